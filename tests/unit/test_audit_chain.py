from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.audit import GENESIS, AuditEvent, AuditRecord, chain_hash, verify_chain

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for i in range(1, n + 1):
        event = AuditEvent(actor="cli:ops", action="deploy", model="m", to_version=str(i), inputs={"n": i})
        at = T0 + timedelta(seconds=i)
        digest = chain_hash(prev, at, event)
        records.append(AuditRecord(i, at, event.actor, event.action, event.model, None, None, event.to_version,
                                   None, event.inputs, prev, digest))
        prev = digest
    return records


def test_an_intact_chain_verifies() -> None:
    assert verify_chain(chain(5)) == []


def test_an_edited_row_is_named() -> None:
    records = chain(5)
    records[2] = replace(records[2], reason="nothing to see here")
    problems = verify_chain(records)
    assert [p.row_id for p in problems] == [3]
    assert "row 3 was edited" in problems[0].problem


def test_a_deleted_row_is_named() -> None:
    records = chain(5)
    del records[1]
    problems = verify_chain(records)
    assert any("row 2 deleted" in p.problem for p in problems)


def test_naive_and_aware_times_hash_alike() -> None:
    event = AuditEvent(actor="a", action="b")
    assert chain_hash(GENESIS, T0, event) == chain_hash(GENESIS, T0.replace(tzinfo=None), event)
