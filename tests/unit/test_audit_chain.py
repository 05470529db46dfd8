from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.audit import (
    GENESIS,
    AuditEvent,
    AuditKeyError,
    AuditRecord,
    KeyRing,
    chain_hash,
    key_ring_from,
    row_hash,
    verify_chain,
    walk_chain,
)

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


# ---- keyed chain ----------------------------------------------------------------------------------------

KEY = "k" * 32


def keyed_chain(ring: KeyRing, n: int, start_prev: str = GENESIS, start: int = 1) -> list[AuditRecord]:
    records, prev = [], start_prev
    for i in range(start, start + n):
        event = AuditEvent(actor="cli:ops", action="deploy", model="m", to_version=str(i))
        at = T0 + timedelta(seconds=i)
        digest, key_id = row_hash(ring, prev, at, event)
        records.append(AuditRecord(i, at, event.actor, event.action, event.model, None, None, event.to_version,
                                   None, {}, prev, digest, key_id))
        prev = digest
    return records


def test_key_ring_from_the_environment() -> None:
    ring = key_ring_from({"AUDIT_HMAC_KEY": KEY, "AUDIT_HMAC_KEY_ID": "2026-11",
                          "AUDIT_HMAC_KEYS": "2025-01:" + "o" * 20})
    assert ring.current_id == "2026-11" and set(ring.keys) == {"2026-11", "2025-01"}
    unnamed = key_ring_from({"AUDIT_HMAC_KEY": KEY})
    assert unnamed.current_id is not None and unnamed.current_id.startswith("k-") and KEY not in unnamed.current_id
    assert not key_ring_from({}).keyed


@pytest.mark.parametrize("env,message", [
    ({"AUDIT_HMAC_KEY": "short"}, "AUDIT_HMAC_KEY: shorter than 16 bytes"),
    ({"AUDIT_HMAC_KEYS": "nocolon"}, "entry 1 is not id:key"),
    ({"AUDIT_HMAC_KEYS": "bad id:" + "x" * 20}, "key id must be"),
    ({"AUDIT_HMAC_KEY": KEY, "AUDIT_HMAC_KEY_ID": "a", "AUDIT_HMAC_KEYS": "a:" + "y" * 20}, "different key"),
])
def test_bad_key_configuration_is_named_without_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(AuditKeyError, match=message) as info:
        key_ring_from(env)
    for value in env.values():
        secret = value.partition(":")[2] or value
        assert len(secret) < 16 or secret not in str(info.value)


def test_keyed_rows_cannot_be_recomputed_without_the_key() -> None:
    ring = key_ring_from({"AUDIT_HMAC_KEY": KEY, "AUDIT_HMAC_KEY_ID": "a"})
    records = keyed_chain(ring, 5)
    assert verify_chain(records, ring) == []
    forged = keyed_chain(key_ring_from({"AUDIT_HMAC_KEY": "g" * 32, "AUDIT_HMAC_KEY_ID": "a"}), 5)
    assert [p.row_id for p in verify_chain(forged, ring)] == [1, 2, 3, 4, 5]


def test_legacy_rows_then_keyed_rows_verify_but_unkeyed_after_keyed_does_not() -> None:
    ring = key_ring_from({"AUDIT_HMAC_KEY": KEY, "AUDIT_HMAC_KEY_ID": "a"})
    legacy = chain(3)
    keyed = keyed_chain(ring, 2, legacy[-1].hash, start=4)
    assert verify_chain(legacy + keyed, ring) == []
    downgraded = keyed_chain(KeyRing(), 1, keyed[-1].hash, start=6)
    problems = verify_chain(legacy + keyed + downgraded, ring)
    assert [p.problem for p in problems] == ["row 6 is unkeyed after keyed rows: it was re-hashed without the key"]


def test_walk_chain_streams() -> None:
    ring = key_ring_from({"AUDIT_HMAC_KEY": KEY})

    def endless() -> Iterator[AuditRecord]:
        yield from keyed_chain(ring, 3)
        raise AssertionError("read past what was asked")

    walked = walk_chain(endless(), ring)
    assert [next(walked).id for _ in range(3)] == [1, 2, 3]
