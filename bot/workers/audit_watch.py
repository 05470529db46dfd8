"""The audit watch: reads new audit rows in order, writes a notice for each unusual one, has them delivered.

The rule (bot/core/unusual.py) is pure; this worker feeds it the rows past the watermark and, for "more than
N rollbacks", the model's earlier rollbacks. Notices are keyed on (audit row id, kind) and the watermark moves
in the same transaction, so a restart or a second replica never writes one twice; delivery then posts each
notice once (see bot/slack/audit_channel.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.core import oplog
from bot.core.audit import AuditRecord
from bot.core.clock import Clock
from bot.core.unusual import Notice, UnusualConfig, needs_history, notices, utc

log = logging.getLogger(__name__)

MAX_AGE = timedelta(hours=24)  # rows older than this when first read (a bot down for days) are not announced


class WatchStore(Protocol):
    def watermark(self) -> int: ...
    def audit_after(self, after_id: int, limit: int = 200) -> list[AuditRecord]: ...
    def rollback_times(self, model: str, since: datetime, before_id: int) -> list[datetime]: ...
    def record_notices(self, start: int, end: int, notices: Sequence[Notice], channel: str) -> bool: ...


class AuditWatch:
    def __init__(self, store: WatchStore, config: UnusualConfig, clock: Clock,
                 render: Callable[[Notice], Notice] | None = None, batch: int = 200) -> None:
        """``render`` finishes a notice's text for its channel (the signed page link, Slack escaping)."""
        self.store = store
        self.config = config
        self.clock = clock
        self.render = render or (lambda n: n)
        self.batch = batch

    def scan(self) -> bool:
        """One batch of audit rows past the watermark; True when there were rows (more may follow).

        Without an audit channel nothing is read or written: the feature costs nothing when it is off.
        """
        if self.config.channel is None:
            return False
        start = self.store.watermark()
        rows = self.store.audit_after(start, self.batch)
        if not rows:
            return False
        found = [self.render(n) for row in rows for n in self._notices(row)]
        if self.store.record_notices(start, rows[-1].id, found, self.config.channel):
            for n in found:
                oplog.event("audit.unusual", kind=n.kind.value, audit_id=n.audit_id, model=n.model)
        return True

    def _notices(self, row: AuditRecord) -> list[Notice]:
        if utc(row.at) < self.clock.now() - MAX_AGE:
            return []
        earlier: list[datetime] = []
        if needs_history(row, self.config) and row.model:
            earlier = self.store.rollback_times(row.model, utc(row.at) - self.config.repeated.window, row.id)
        return notices(row, self.config, earlier)


__all__ = ["MAX_AGE", "AuditWatch", "WatchStore"]
