"""The keyed audit chain against a real database: rewrite attacks, anchors, rotation, live verification, export."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.audit_anchors import Anchorer, read_anchors
from bot.audit_cli import export, verify
from bot.core.audit import GENESIS, AuditEvent, AuditKeyError, KeyRing, chain_hash, key_ring_from
from bot.core.clock import ManualClock
from bot.store.audit_log import AuditLog, Filters
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from tests.slack_api import FakeSlackApi, fake_slack

__all__ = ["fake_slack"]

KEY_A = "a" * 32
KEY_B = "b" * 32
RING = key_ring_from({"AUDIT_HMAC_KEY": KEY_A, "AUDIT_HMAC_KEY_ID": "2026-a"})
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def store_with(db_url: str, ring: KeyRing) -> SqlStore:
    return SqlStore(make_engine(db_url), ManualClock(T0), audit_keys=ring)


def append(store: SqlStore, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        store.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
        store.append_audit(AuditEvent(actor="cli:ops", action="deploy", model="m", to_version=str(i),
                                      reason=f"deployed {i}", inputs={"n": i}))


def run_verify(log: AuditLog, capsys: pytest.CaptureFixture[str], anchors: Path | None = None,
               against: Path | None = None) -> tuple[int, str]:
    code = verify(log, str(anchors) if anchors else None, str(against) if against else None)
    return code, capsys.readouterr().out


def rewrite_from(db_url: str, first: int, *, drop_key: bool) -> None:
    """The attack from the issue: edit a row, recompute every later hash and the head with our own function."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit SET reason = 'nothing happened' WHERE id = :i"), {"i": first})
        rows = conn.execute(text("SELECT id, at, actor, action, model, proposal_id, from_version, to_version, "
                                 "reason, inputs, prev_hash, key_id FROM audit ORDER BY id")).all()
        prev = GENESIS
        for r in rows:
            if r.id < first:
                prev = conn.execute(text("SELECT hash FROM audit WHERE id = :i"), {"i": r.id}).scalar_one()
                continue
            at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(r.at)
            inputs = r.inputs if isinstance(r.inputs, dict) else json.loads(r.inputs)
            event = AuditEvent(r.actor, r.action, r.model, r.proposal_id, r.from_version, r.to_version, r.reason,
                               inputs)
            digest = chain_hash(prev, at, event)
            conn.execute(text("UPDATE audit SET prev_hash = :p, hash = :h" + (", key_id = NULL" if drop_key else "")
                              + " WHERE id = :i"), {"p": prev, "h": digest, "i": r.id})
            prev = digest
        conn.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    engine.dispose()


@pytest.mark.parametrize("drop_key", [False, True], ids=["keep-key-id", "downgrade-to-unkeyed"])
def test_rewriting_row_500_and_every_later_hash_fails_verify(db_url: str, drop_key: bool,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    append(store, 520)
    assert run_verify(store.audit_log, capsys)[0] == 0
    rewrite_from(db_url, 500, drop_key=drop_key)
    code, out = run_verify(store.audit_log, capsys)
    assert code == 1
    expected = "row 500 is unkeyed after keyed rows" if drop_key else "TAMPERED: row 500 was edited"
    assert expected in out
    store.engine.dispose()


def test_deleting_the_newest_rows_with_the_head_is_caught_by_the_anchor(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    anchors = tmp_path / "anchors.jsonl"
    anchorer = Anchorer(store.audit_log, store.clock.now, path=str(anchors))
    append(store, 20)
    assert anchorer.anchor() is not None
    assert anchorer.anchor() is None  # the head did not move: nothing new to anchor
    append(store, 5, start=21)
    assert anchorer.anchor() is not None
    code, out = run_verify(store.audit_log, capsys, anchors)
    assert code == 0, out
    assert f"checked against anchor: {anchors} line 2 (head row #25" in out and "signature valid" in out
    engine = create_engine(db_url)
    with engine.begin() as conn:
        h = conn.execute(text("SELECT hash FROM audit WHERE id = 18")).scalar_one()
        conn.execute(text("DELETE FROM audit WHERE id > 18"))
        conn.execute(text("UPDATE audit_head SET last_id = 18, last_hash = :h"), {"h": h})
    engine.dispose()
    assert run_verify(store.audit_log, capsys)[0] == 0  # without the anchor nothing shows: why anchors exist
    code, out = run_verify(store.audit_log, capsys, anchors)
    assert code == 1
    assert "rows 19-20 were deleted together with the head: anchor line 1" in out
    store.engine.dispose()


def test_an_edited_anchor_file_is_refused(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    anchors = tmp_path / "anchors.jsonl"
    append(store, 3)
    Anchorer(store.audit_log, store.clock.now, path=str(anchors)).anchor()
    doc = json.loads(anchors.read_text())
    anchors.write_text(json.dumps({**doc, "head_id": 2}) + "\n")
    lines = read_anchors(anchors, RING)
    assert lines[0].problem == "anchor line 1: its signature does not match"
    code, out = run_verify(store.audit_log, capsys, anchors)
    assert code == 1 and "the anchor file was altered" in out
    store.engine.dispose()


def test_legacy_unkeyed_rows_still_verify_and_are_counted(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = store_with(db_url, KeyRing())
    append(legacy, 4)
    keyed = store_with(db_url, RING)
    keyed.clock = legacy.clock
    append(keyed, 3, start=5)
    code, out = run_verify(keyed.audit_log, capsys)
    assert code == 0, out
    assert "note: 4 unkeyed (legacy) rows" in out and "keyed rows by key id: 2026-a 3" in out
    assert "audit chain intact: 7 rows verified" in out
    for s in (legacy, keyed):
        s.engine.dispose()


def test_rotated_keys_verify_while_the_retired_key_is_configured(db_url: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    old = store_with(db_url, RING)
    append(old, 3)
    new_ring = key_ring_from({"AUDIT_HMAC_KEY": KEY_B, "AUDIT_HMAC_KEY_ID": "2026-b",
                              "AUDIT_HMAC_KEYS": f"2026-a:{KEY_A}"})
    new = store_with(db_url, new_ring)
    new.clock = old.clock
    append(new, 2, start=4)
    code, out = run_verify(new.audit_log, capsys)
    assert code == 0 and "2026-a 3, 2026-b 2" in out
    forgot = AuditLog(new.engine, key_ring_from({"AUDIT_HMAC_KEY": KEY_B, "AUDIT_HMAC_KEY_ID": "2026-b"}))
    code, out = run_verify(forgot, capsys)
    assert code == 1 and "row 1 (and every later row signed with key id '2026-a') cannot be checked" in out
    assert KEY_A not in out and KEY_B not in out
    for s in (old, new):
        s.engine.dispose()


def test_verify_during_a_write_storm_reports_no_false_alarm(db_url: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    append(store, 50)
    writer_store = store_with(db_url, RING)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(400):
                writer_store.append_audit(AuditEvent(actor="bot:policy", action="storm", inputs={"i": i}))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    runs: list[tuple[int, str]] = []
    while not done.is_set() or not runs:
        runs.append(run_verify(store.audit_log, capsys))
    thread.join()
    assert not errors
    assert len(runs) >= 2
    assert all(code == 0 for code, _ in runs), [out for code, out in runs if code]
    assert run_verify(store.audit_log, capsys)[1].endswith("audit chain intact: 450 rows verified\n")
    for s in (store, writer_store):
        s.engine.dispose()


def export_to(log: AuditLog, path: Path, capsys: pytest.CaptureFixture[str], **filters: Any) -> dict[str, Any]:
    assert export(log, Filters(**filters), "jsonl", str(path)) == 0
    assert "manifest" in capsys.readouterr().out
    return dict(json.loads(Path(str(path) + ".manifest.json").read_text()))


def test_export_then_verify_against_names_deleted_and_edited_rows(db_url: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    append(store, 12)
    dump = tmp_path / "audit.jsonl"
    manifest = export_to(store.audit_log, dump, capsys)
    assert manifest["rows"] == 12 and manifest["head_id"] == 12 and manifest["key_id"] == "2026-a"
    assert len(manifest["signature"]) == 64 and KEY_A not in json.dumps(manifest)
    assert [json.loads(line)["id"] for line in dump.read_text().splitlines()] == list(range(1, 13))
    append(store, 2, start=13)  # the bot goes on writing: still consistent with the export
    code, out = run_verify(store.audit_log, capsys, against=dump)
    assert code == 0, out
    assert f"export {dump} fully present" in out
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE id = 7"))
        conn.execute(text("UPDATE audit SET to_version = '99' WHERE id = 9"))
    engine.dispose()
    code, out = run_verify(store.audit_log, capsys, against=dump)
    assert code == 1
    assert "TAMPERED: exported row 7 (deploy) is no longer in the database: deleted after the export" in out
    assert "TAMPERED: exported row 9 was changed after the export: to_version differ" in out
    store.engine.dispose()


def test_an_altered_export_or_manifest_is_refused(db_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with(db_url, RING)
    append(store, 3)
    dump = tmp_path / "audit.jsonl"
    export_to(store.audit_log, dump, capsys, model="m")
    mpath = Path(str(dump) + ".manifest.json")
    manifest = json.loads(mpath.read_text())
    mpath.write_text(json.dumps({**manifest, "rows": 2}))
    code, out = run_verify(store.audit_log, capsys, against=dump)
    assert code == 1 and "audit.jsonl.manifest.json: its signature does not match: the manifest was altered" in out
    mpath.write_text(json.dumps(manifest))
    dump.write_text(dump.read_text().replace('"deployed 2"', '"deployed 3"'))
    code, out = run_verify(store.audit_log, capsys, against=dump)
    assert code == 1 and "does not match the sha256 in its manifest" in out
    store.engine.dispose()


def test_anchors_are_posted_to_slack_and_a_slack_outage_keeps_the_file(
        db_url: str, tmp_path: Path, fake_slack: FakeSlackApi) -> None:
    from bot.audit_anchors import slack_poster

    store = store_with(db_url, RING)
    anchors = tmp_path / "anchors.jsonl"
    post = slack_poster("xoxb-test-token", fake_slack.base_url, "C0AUDIT")
    anchorer = Anchorer(store.audit_log, store.clock.now, path=str(anchors), post=post)
    append(store, 2)
    anchorer.anchor()
    call = fake_slack.wait_for("chat.postMessage")[0]
    assert call.body["channel"] == "C0AUDIT" and "audit anchor: head row #2, 2 rows" in call.body["text"]
    posted = json.loads(call.body["text"].split("```")[1])
    assert posted == json.loads(anchors.read_text().splitlines()[0])
    assert KEY_A not in call.body["text"]
    fake_slack.fail("chat.postMessage", "internal_error", times=10)
    append(store, 1, start=3)
    assert anchorer.anchor() is not None  # Slack down: logged, the file anchor is still written
    assert [a.anchor.head_id for a in read_anchors(anchors, RING) if a.anchor] == [2, 3]
    store.engine.dispose()


def test_a_writer_without_the_key_cannot_append_to_a_keyed_chain(db_url: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    keyed = store_with(db_url, RING)
    append(keyed, 2)
    unkeyed = store_with(db_url, KeyRing())
    with pytest.raises(AuditKeyError, match=r"AUDIT_HMAC_KEY is not set here, but the audit chain is keyed "
                                            r"\(key id 2026-a\)"):
        unkeyed.append_audit(AuditEvent(actor="cli:ops", action="deploy"))
    assert run_verify(keyed.audit_log, capsys)[1].endswith("audit chain intact: 2 rows verified\n")
    for s in (keyed, unkeyed):
        s.engine.dispose()
