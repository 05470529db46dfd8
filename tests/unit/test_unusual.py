"""The unusual-activity rule (audit rows in, notices out) and its [audit] table in the policy file."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from bot.core.audit import AuditRecord
from bot.core.unusual import HoursRule, RepeatedRule, UnusualConfig, UnusualKind, notices
from bot.policy_file import parse_policy

MONDAY_NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
CONFIG = UnusualConfig(channel="C0AUDIT")


def row(action: str, actor: str = "slack:U0LEAD", at: datetime = MONDAY_NOON, **kw: Any) -> AuditRecord:
    row_id = kw.pop("id", 41)
    fields: dict[str, Any] = {"model": "ranker", "proposal_id": None, "from_version": "2", "to_version": "1",
                              "reason": None, "inputs": {}, **kw}
    return AuditRecord(id=row_id, at=at, actor=actor, action=action, prev_hash="0", hash="1", **fields)


def kinds(r: AuditRecord, config: UnusualConfig = CONFIG, earlier: tuple[datetime, ...] = ()) -> list[UnusualKind]:
    return [n.kind for n in notices(r, config, earlier)]


def test_override_break_glass_and_undo() -> None:
    assert kinds(row("deployment.override", "api:ci", reason="hotfix")) == [UnusualKind.OVERRIDE]
    assert kinds(row("proposal.approved", "cli:alice", proposal_id=3)) == [UnusualKind.BREAK_GLASS]
    assert kinds(row("rollback.break_glass", "cli:alice")) == [UnusualKind.BREAK_GLASS]
    assert kinds(row("proposal.approved", "slack:U0LEAD")) == []  # an approval in chat is the normal path
    assert kinds(row("proposal.created", inputs={"kind": "undo"})) == [UnusualKind.UNDO]
    assert kinds(row("proposal.created", inputs={"kind": "manual"})) == []
    (n,) = notices(row("proposal.approved", "cli:alice", proposal_id=3), CONFIG)
    assert "Break-glass rollback of ranker 2 → 1 by cli:alice" in n.text and n.page == "/incidents/3"
    (o,) = notices(row("deployment.override", "api:ci"), CONFIG)
    assert o.page == "/models/ranker"


def test_more_than_n_rollbacks_in_the_window() -> None:
    config = UnusualConfig(channel="C0AUDIT", repeated=RepeatedRule(max_rollbacks=2, window=timedelta(hours=6)))
    done = row("rollback.succeeded", "bot:policy")
    within = (MONDAY_NOON - timedelta(hours=1), MONDAY_NOON - timedelta(hours=5))
    assert kinds(done, config, within[:1]) == []  # 2 in 6 h: not more than 2
    (n,) = notices(done, config, within)
    assert n.kind is UnusualKind.REPEATED_ROLLBACKS and "rolled back 3 times in 6h (more than 2)" in n.text
    naive_old = (MONDAY_NOON - timedelta(hours=7)).replace(tzinfo=None)  # SQLite: naive UTC, out of the window
    assert kinds(done, config, (within[0], naive_old)) == []


def test_outside_working_hours_in_the_configured_time_zone() -> None:
    hours = HoursRule(start=time(9, 0), end=time(17, 0), timezone="America/New_York")
    config = UnusualConfig(channel="C0AUDIT", hours=hours)
    assert kinds(row("approval.added"), config) == [UnusualKind.OFF_HOURS]  # 12:00 UTC: 07:00 in New York
    assert kinds(row("approval.added"), CONFIG) == []  # the default: 08:00-19:00 UTC, Monday to Friday
    late = row("approval.added", at=MONDAY_NOON + timedelta(hours=10))  # 22:00 UTC = 17:00 New York: closed
    (n,) = notices(late, config)
    assert n.kind is UnusualKind.OFF_HOURS and "Mon 17:00 America/New_York" in n.text
    assert kinds(row("approval.added", at=MONDAY_NOON + timedelta(hours=3)), config) == []  # 10:00 New York
    saturday = MONDAY_NOON + timedelta(days=5)
    assert kinds(row("model.frozen", at=saturday)) == [UnusualKind.OFF_HOURS]
    assert kinds(row("rollback.executing", at=saturday)) == []  # the bot's rows after a click: not again
    assert kinds(row("model.frozen", "alert:alertmanager", at=saturday)) == []  # machines keep no hours


def test_each_kind_can_be_switched_off_and_nothing_without_a_channel() -> None:
    off = UnusualConfig(channel="C0AUDIT", enabled=frozenset(UnusualKind) - {UnusualKind.OVERRIDE})
    assert kinds(row("deployment.override", "api:ci"), off) == []
    assert kinds(row("deployment.override", "api:ci"), UnusualConfig()) == []


def test_a_row_can_be_unusual_twice() -> None:
    sunday = MONDAY_NOON - timedelta(days=1)
    assert kinds(row("deployment.override", "cli:bob", at=sunday)) == [UnusualKind.OVERRIDE, UnusualKind.OFF_HOURS]


BASE: dict[str, Any] = {"defaults": {"channel": "C0ALERTS"}, "models": {"ranker": {}}}


def test_policy_file_audit_table() -> None:
    loaded = parse_policy({**BASE, "audit": {
        "channel": "C0AUDIT", "undo": {"enabled": False},
        "repeated_rollbacks": {"max": 5, "window": "12h"},
        "off_hours": {"start": "07:30", "end": "20:00", "days": ["mon", "tue"], "timezone": "Europe/Berlin"}}})
    assert loaded.policy is not None, loaded.problems
    audit = loaded.policy.audit
    assert audit.channel == "C0AUDIT" and UnusualKind.UNDO not in audit.enabled
    assert audit.repeated == RepeatedRule(5, timedelta(hours=12))
    assert (audit.hours.start, audit.hours.end, audit.hours.days) == (time(7, 30), time(20, 0), ("mon", "tue"))
    assert parse_policy(BASE).policy is not None and parse_policy(BASE).policy.audit.channel is None  # type: ignore[union-attr]


@pytest.mark.parametrize("audit,key", [
    ({"channel": 5}, "audit.channel"),
    ({"bogus": {}}, "audit.bogus"),
    ({"undo": {"enabled": "yes"}}, "audit.undo.enabled"),
    ({"undo": {"max": 2}}, "audit.undo.max"),
    ({"repeated_rollbacks": {"max": 0}}, "audit.repeated_rollbacks.max"),
    ({"repeated_rollbacks": {"window": "soon"}}, "audit.repeated_rollbacks.window"),
    ({"off_hours": {"start": "8"}}, "audit.off_hours.start"),
    ({"off_hours": {"days": ["someday"]}}, "audit.off_hours.days"),
    ({"off_hours": {"timezone": "Mars/Olympus"}}, "audit.off_hours.timezone"),
])
def test_policy_file_audit_problems_name_the_key(audit: dict[str, Any], key: str) -> None:
    loaded = parse_policy({**BASE, "audit": audit})
    assert loaded.policy is None and [p.key for p in loaded.problems] == [key]


class WatchStore:
    """The audit watch's port in memory: the rows, the watermark, the notices written."""

    def __init__(self, rows: list[AuditRecord]) -> None:
        self.rows, self.position, self.written = rows, 0, list[Any]()

    def watermark(self) -> int:
        return self.position

    def audit_after(self, after_id: int, limit: int = 200) -> list[AuditRecord]:
        return [r for r in self.rows if r.id > after_id][:limit]

    def rollback_times(self, model: str, since: datetime, before_id: int) -> list[datetime]:
        return [r.at for r in self.rows if r.action == "rollback.succeeded" and r.id < before_id and r.at >= since]

    def record_notices(self, start: int, end: int, notices: Any, channel: str) -> bool:
        if start != self.position:
            return False
        self.position, self.written = end, [*self.written, *notices]
        return True


def test_the_watch_skips_stale_rows_and_reads_nothing_without_a_channel() -> None:
    from bot.core.clock import ManualClock
    from bot.workers.audit_watch import AuditWatch

    rows = [row("deployment.override", "api:ci", id=1, at=MONDAY_NOON - timedelta(days=2)),
            row("deployment.override", "api:ci", id=2)]
    store = WatchStore(rows)
    assert AuditWatch(store, UnusualConfig(), ManualClock(MONDAY_NOON)).scan() is False and store.position == 0
    watch = AuditWatch(store, CONFIG, ManualClock(MONDAY_NOON), batch=1)
    assert watch.scan() and watch.scan() and not watch.scan()
    assert store.position == 2 and [n.audit_id for n in store.written] == [2]  # the 2-day-old row: not late
