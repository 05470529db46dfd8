from datetime import UTC, datetime, timedelta

import pytest

from bot.core.errors import NoRollbackTarget, UnknownVersion
from bot.core.selection import Deployment, choose_target

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def dep(i: int, version: str, stable: bool = False, rolled_back: bool = False) -> Deployment:
    at = T0 + timedelta(hours=i)
    return Deployment(id=i, model="m", version=version, deployed_at=at,
                      stable_at=at + timedelta(minutes=30) if stable else None,
                      rolled_back_at=at + timedelta(hours=1) if rolled_back else None)


def test_last_stable_version_is_chosen() -> None:
    choice = choose_target("m", [dep(1, "5", stable=True), dep(2, "6", stable=True), dep(3, "7")])
    assert (choice.from_version, choice.to_version) == ("7", "6")
    assert "last stable version" in choice.note


def test_previous_version_that_was_rolled_back_is_skipped() -> None:
    history = [dep(1, "5", stable=True), dep(2, "6", stable=True, rolled_back=True), dep(3, "5"), dep(4, "7")]
    choice = choose_target("m", history)
    assert choice.to_version == "5"


def test_nothing_stable_yet_falls_back_to_the_previous_deployment_and_says_so() -> None:
    choice = choose_target("m", [dep(1, "5"), dep(2, "6"), dep(3, "7")])
    assert choice.to_version == "6"
    assert "no earlier version became stable" in choice.note


def test_a_redeploy_of_the_same_version_is_not_a_target() -> None:
    choice = choose_target("m", [dep(1, "5", stable=True), dep(2, "7"), dep(3, "7")])
    assert choice.to_version == "5"


def test_requested_version_must_have_been_deployed_before() -> None:
    history = [dep(1, "5"), dep(2, "6"), dep(3, "7")]
    assert choose_target("m", history, "5").to_version == "5"
    with pytest.raises(UnknownVersion, match="never ran version 9 before 7; earlier versions: 6, 5"):
        choose_target("m", history, "9")
    with pytest.raises(UnknownVersion, match="already runs version 7"):
        choose_target("m", history, "7")


def test_no_history_and_single_deployment_are_refused_clearly() -> None:
    with pytest.raises(NoRollbackTarget, match="no recorded deployment"):
        choose_target("m", [])
    with pytest.raises(NoRollbackTarget, match="only ever run version 7"):
        choose_target("m", [dep(1, "7")])


def test_every_earlier_version_rolled_back() -> None:
    with pytest.raises(NoRollbackTarget, match="name one with `to VERSION`"):
        choose_target("m", [dep(1, "6", rolled_back=True), dep(2, "7")])
