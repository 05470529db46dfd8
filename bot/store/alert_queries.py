"""Alert rows: batch recording with deduplication, resolution, attachment to proposals. Mixed into SqlStore.

A batch is one transaction, so an answered 202 means every alert of it is stored. Inserts use
``ON CONFLICT DO NOTHING`` on the identity (source, fingerprint, starts_at): when an HA pair sends the same
alert at the same moment one insert wins and the other reads the winner's row as a duplicate, with no
exception that would abort the PostgreSQL transaction and lose the rest of the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, func, text, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, Row
from sqlmodel import Session, col, select

from bot.core.actor import Actor
from bot.core.alert import Alert, AlertStatus
from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.events import AuditAction
from bot.core.intake import AlertBatch, AlertRecord, Stored, StoreOutcome
from bot.core.severity import parse_severity
from bot.store.tables import AlertRow, ProposalRow, core, table_of
from bot.store.unit_of_work import UnitOfWork

AnyAlertRow = AlertRow | Row[Any]  # an ORM row, or a Core row of the alerts table (the prebuilt statements')


def _record(row: AnyAlertRow) -> AlertRecord:
    """From an ORM row or a Core row of the alerts table (the workers' prebuilt reads)."""
    assert row.id is not None
    annotations = row.annotations or {}
    return AlertRecord(
        id=row.id, source=row.source, fingerprint=row.fingerprint, name=row.name, model=row.model,
        status=AlertStatus(row.status), severity=parse_severity(row.severity), starts_at=row.starts_at,
        ends_at=row.ends_at, received_at=row.received_at, resolved_at=row.resolved_at,
        proposal_id=row.proposal_id,
        summary=str(annotations.get("summary") or annotations.get("description") or row.name),
        labels=dict(row.labels or {}), links=dict(row.links or {}),
        values={k: float(v) for k, v in (row.values or {}).items()},
        annotations={str(k): str(v) for k, v in annotations.items()},
        version=row.version, outcome=row.outcome,
    )


# Built once (see bot/store/unit_of_work.py): every request and every decision runs these.
_ALERTS, _PROPOSALS = table_of(AlertRow), table_of(ProposalRow)
_KNOWN = core_select(_ALERTS).where(_ALERTS.c.source == bindparam("p_source"),
                                    _ALERTS.c.fingerprint.in_(bindparam("p_fingerprints", expanding=True)))
_RESOLVE = (update(_ALERTS).where(_ALERTS.c.id == bindparam("p_id"), _ALERTS.c.status == AlertStatus.FIRING.value)
            .values(status=AlertStatus.RESOLVED.value, ends_at=bindparam("p_ended"), resolved_at=bindparam("p_ended"),
                    # back into the inbox when its incident must hear of it (a waiting proposal may cancel)
                    decided_at=case((_ALERTS.c.proposal_id.is_(None), _ALERTS.c.decided_at), else_=None))
            .returning(*_ALERTS.c))
_ATTACH = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("p_ids", expanding=True)), _ALERTS.c.proposal_id.is_(None))
           .values(proposal_id=bindparam("p_proposal")))
_TOUCH_PROPOSAL = (update(_PROPOSALS).where(_PROPOSALS.c.id == bindparam("p_id"))
                   .values(updated_at=bindparam("p_now"), card_version=_PROPOSALS.c.card_version + 1))


def _lock_key(model: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (Python's hash() differs between processes)."""
    digest = hashlib.sha256(f"rollback-bot:alert-intake:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AlertQueries(UnitOfWork):
    """The alert half of SqlStore; relies on its ``engine``, ``clock``, ``session()`` and ``_audit()``."""

    engine: Engine
    clock: Clock

    if TYPE_CHECKING:
        def notify_workers(self, session: Session, worker: str) -> None: ...

    # ---- writes -------------------------------------------------------------------------------------

    def store_batches(self, batches: Sequence[AlertBatch]) -> list[list[Stored]]:
        """Several requests' batches in one transaction (group commit): one BEGIN/COMMIT, one fsync and one
        NOTIFY for all of them. A later batch sees an earlier one's rows as duplicates, as it would have
        after their separate commits."""
        with self._writers.giving_way(), self.session() as s:  # a rollback's writes go first (SQLite)
            postgres = self.engine.dialect.name == "postgresql"
            known = self._known_in_group(s, batches)
            added: dict[tuple[str, str, datetime], AlertRecord] = {}
            stored = [self._store_batch(s, batch, postgres, known.setdefault(batch.source, {}), added)
                      for batch in batches]
            if any(r.outcome in (StoreOutcome.NEW, StoreOutcome.RESOLVED) and r.record.model
                   for results in stored for r in results):
                self.notify_workers(s, "decide")  # every replica's decider wakes on commit
        return stored

    def _store_batch(self, s: Session, batch: AlertBatch, postgres: bool,
                     known: dict[tuple[str, datetime], AnyAlertRow],
                     added: dict[tuple[str, str, datetime], AlertRecord]) -> list[Stored]:
        """``known``: the source's stored rows read up front; ``added``: rows earlier batches of the same
        transaction inserted (a repeat of one of those is a duplicate without another statement)."""
        source, alerts, received_at = batch.source, batch.alerts, batch.received_at
        # Rows are written in identity order: two batches holding the same alerts in another order would
        # otherwise wait on each other's uncommitted inserts (a deadlock on PostgreSQL).
        order = sorted(range(len(alerts)), key=lambda i: (alerts[i][0].fingerprint,
                                                          alerts[i][0].starts_at is None,
                                                          alerts[i][0].starts_at or received_at))
        results: dict[int, Stored] = {}
        # New identities go in with one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING; the rest
        # (repeats, resolutions, alerts without a start time, lost races) one by one below.
        fresh: dict[tuple[str, datetime], int] = {}
        for i in order:
            alert = alerts[i][0]
            key = (alert.fingerprint, alert.starts_at) if alert.starts_at is not None else None
            if key is not None and key not in known and (source, *key) not in added:
                fresh.setdefault(key, i)
        inserted = self._insert_many(s, source, [alerts[i] for i in fresh.values()], received_at, postgres)
        for i in order:
            alert, model = alerts[i]
            key = (alert.fingerprint, alert.starts_at) if alert.starts_at is not None else None
            if key is not None and key in inserted:
                first = fresh.get(key) == i
                if first or inserted[key].status is alert.status:  # a repeat inside the same batch
                    results[i] = Stored(StoreOutcome.NEW if first else StoreOutcome.DUPLICATE, inserted[key])
                    continue
            earlier = added.get((source, *key)) if key is not None else None
            if earlier is not None and earlier.status is alert.status:  # a repeat of an earlier batch's
                results[i] = Stored(StoreOutcome.DUPLICATE, earlier)
                continue
            results[i] = self._store_one(s, source, alert, model, received_at, postgres, known)
        added.update({(source, *key): record for key, record in inserted.items()})
        return [results[i] for i in range(len(alerts))]

    def _known_in_group(self, s: Session, batches: Sequence[AlertBatch]
                        ) -> dict[str, dict[tuple[str, datetime], AnyAlertRow]]:
        """Every batch's already stored alerts, one query per source for the whole group: repeats, the bulk
        of any storm, cost no more statements than new alerts."""
        wanted: dict[str, set[str]] = {}
        for batch in batches:
            wanted.setdefault(batch.source, set()).update(a.fingerprint for a, _ in batch.alerts
                                                          if a.starts_at is not None)
        known: dict[str, dict[tuple[str, datetime], AnyAlertRow]] = {}
        for source, fingerprints in wanted.items():
            rows = core(s).execute(_KNOWN, {"p_source": source, "p_fingerprints": sorted(fingerprints)}
                                   ).all() if fingerprints else []
            known[source] = {(r.fingerprint, r.starts_at): r for r in rows}
        return known

    def _store_one(self, s: Session, source: str, alert: Alert, model: str | None, received_at: datetime,
                   postgres: bool, known: dict[tuple[str, datetime], AnyAlertRow]) -> Stored:
        firing = alert.status is AlertStatus.FIRING
        if alert.starts_at is None:
            if postgres:  # without a start time the unique key cannot deduplicate: serialise this fingerprint
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(f"{source}/{alert.fingerprint}")})
            rows = self._by_fingerprint(s, source, alert.fingerprint)
            live = [r for r in rows if r.status == AlertStatus.FIRING.value]
            if firing and live:
                return Stored(StoreOutcome.DUPLICATE, _record(live[0]))
            if not firing and live:  # every firing episode of this fingerprint has ended
                ended = [self._resolve(s, episode, alert, received_at) for episode in live]
                return Stored(StoreOutcome.RESOLVED, _record(ended[0] or live[0]))
            if not firing and rows:
                return Stored(StoreOutcome.DUPLICATE, _record(rows[0]))
            starts_at = received_at if firing else (alert.ends_at or received_at)
        else:
            starts_at = alert.starts_at
        for attempt in range(2):
            existing = (known.get((alert.fingerprint, starts_at)) if attempt == 0
                        else self._by_identity(s, source, alert.fingerprint, starts_at))
            if existing is None:
                inserted = self._insert(s, source, alert, model, starts_at, received_at, postgres)
                if inserted is not None:
                    known[(alert.fingerprint, starts_at)] = inserted
                    return Stored(StoreOutcome.NEW, _record(inserted))
                continue  # lost an insert race: read the winner's row
            row = existing
            if row.status == alert.status.value:
                return Stored(StoreOutcome.DUPLICATE, _record(row))
            if firing:
                return Stored(StoreOutcome.STALE, _record(row))
            done = self._resolve(s, row, alert, received_at)
            if done is not None:
                known[(alert.fingerprint, starts_at)] = done  # a later batch of the group sees it resolved
                return Stored(StoreOutcome.RESOLVED, _record(done))
        raise RuntimeError(f"alert {source}/{alert.fingerprint} could be neither inserted nor read")

    def _by_fingerprint(self, s: Session, source: str, fingerprint: str) -> list[AlertRow]:
        return list(s.exec(
            select(AlertRow).where(AlertRow.source == source, AlertRow.fingerprint == fingerprint)
            .order_by(col(AlertRow.starts_at).desc(), col(AlertRow.id).desc())
        ).all())

    def _by_identity(self, s: Session, source: str, fingerprint: str, starts_at: datetime) -> AlertRow | None:
        return s.exec(select(AlertRow).where(
            AlertRow.source == source, AlertRow.fingerprint == fingerprint, AlertRow.starts_at == starts_at,
        )).first()

    def _values(self, source: str, alert: Alert, model: str | None, starts_at: datetime,
                received_at: datetime) -> dict[str, Any]:
        resolved = alert.status is AlertStatus.RESOLVED
        values: dict[str, Any] = {
            "source": source, "fingerprint": alert.fingerprint, "starts_at": starts_at, "ends_at": alert.ends_at,
            "status": alert.status.value, "name": alert.name, "model": model, "severity": str(alert.severity),
            "labels": dict(alert.labels), "annotations": dict(alert.annotations), "links": dict(alert.links),
            "values": dict(alert.values), "received_at": received_at,
            "resolved_at": (alert.ends_at or received_at) if resolved else None,
            "decided_at": None, "outcome": None, "outcome_reason": None, "version": alert.version,
        }
        if model is None or resolved:  # nothing for the decider: closed in the inbox at once
            values.update(decided_at=received_at, outcome="ignored" if model is None else "resolved",
                          outcome_reason="no model matches its labels" if model is None
                          else "resolved, never seen firing")
        return values

    def _insert_many(self, s: Session, source: str, alerts: Sequence[tuple[Alert, str | None]],
                     received_at: datetime, postgres: bool) -> dict[tuple[str, datetime], AlertRecord]:
        if not alerts:
            return {}
        rows = [self._values(source, a, m, a.starts_at, received_at) for a, m in alerts if a.starts_at is not None]
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        # Core executemany with RETURNING: one cached statement, sent as multi-row batches ("insertmanyvalues").
        statement = dialect_insert(_ALERTS).on_conflict_do_nothing(
            index_elements=["source", "fingerprint", "starts_at"]).returning(*_ALERTS.c)
        found: dict[tuple[str, datetime], AlertRecord] = {}
        for row in core(s).execute(statement, rows):
            record = _record(row)
            found[(record.fingerprint, record.starts_at)] = record
        return found

    def _insert(self, s: Session, source: str, alert: Alert, model: str | None, starts_at: datetime,
                received_at: datetime, postgres: bool) -> AlertRow | None:
        resolved = alert.status is AlertStatus.RESOLVED
        values: dict[str, Any] = {
            "source": source, "fingerprint": alert.fingerprint, "starts_at": starts_at, "ends_at": alert.ends_at,
            "status": alert.status.value, "name": alert.name, "model": model, "severity": str(alert.severity),
            "labels": dict(alert.labels), "annotations": dict(alert.annotations), "links": dict(alert.links),
            "values": dict(alert.values), "received_at": received_at,
            "resolved_at": (alert.ends_at or received_at) if resolved else None, "version": alert.version,
        }
        if model is None or resolved:  # nothing for the decider: closed in the inbox at once
            values.update(decided_at=received_at, outcome="ignored" if model is None else "resolved",
                          outcome_reason="no model matches its labels" if model is None
                          else "resolved, never seen firing")
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        statement = dialect_insert(AlertRow).values(**values).on_conflict_do_nothing(
            index_elements=["source", "fingerprint", "starts_at"]).returning(col(AlertRow.id))
        new_id = s.execute(statement).scalar()
        if new_id is None:
            return None
        row = s.get(AlertRow, new_id)
        assert row is not None
        return row

    def _resolve(self, s: Session, episode: AnyAlertRow, alert: Alert, received_at: datetime) -> Row[Any] | None:
        """firing → resolved (compare-and-set): the row as it left it, None if it was not firing; a resolution
        inside an incident goes into its timeline."""
        ended = alert.ends_at or received_at
        row = core(s).execute(_RESOLVE, {"p_id": episode.id, "p_ended": ended}).first()
        if row is None:
            return None
        if row.proposal_id is not None:
            self._audit(s, AuditEvent(
                actor=str(Actor.alert(row.source)), action=AuditAction.ALERT_RESOLVED, model=row.model,
                proposal_id=row.proposal_id,
                reason=f"{row.name} resolved at {ended:%H:%M:%S} UTC (firing since {row.starts_at:%H:%M:%S} UTC)",
                inputs={"fingerprint": row.fingerprint, "severity": row.severity,
                        "starts_at": row.starts_at.isoformat(), "ends_at": ended.isoformat()},
            ))
        return row

    def attach_alerts(self, proposal_id: int, alert_ids: Sequence[int], audit: AuditEvent) -> int:
        if not alert_ids:
            return 0
        now = self.clock.now()
        with self.session() as s:
            conn = core(s)
            attached = int(conn.execute(_ATTACH, {"p_ids": list(alert_ids), "p_proposal": proposal_id}).rowcount)
            if attached == 0:
                return 0
            conn.execute(_TOUCH_PROPOSAL, {"p_id": proposal_id, "p_now": now})
            self._audit(s, replace(audit, proposal_id=proposal_id, inputs={**audit.inputs, "attached": attached}),
                        now)
            return attached

    # ---- reads --------------------------------------------------------------------------------------

    def alerts_for_proposal(self, proposal_id: int) -> list[AlertRecord]:
        with self._reading() as s:
            rows = s.exec(select(AlertRow).where(AlertRow.proposal_id == proposal_id)
                          .order_by(col(AlertRow.id))).all()
            return [_record(r) for r in rows]

    def firing_alerts(self, model: str) -> list[AlertRecord]:
        with self._reading() as s:
            rows = s.exec(select(AlertRow).where(AlertRow.model == model,
                                                 AlertRow.status == AlertStatus.FIRING.value)
                          .order_by(col(AlertRow.id))).all()
            return [_record(r) for r in rows]

    def alert_counts(self) -> dict[str, int]:
        """Totals for the benchmark and tests: rows, firing, attached, distinct identities, proposals."""
        with self._reading() as s:
            total = s.exec(select(func.count()).select_from(AlertRow)).one()
            firing = s.exec(select(func.count()).select_from(AlertRow)
                            .where(AlertRow.status == AlertStatus.FIRING.value)).one()
            attached = s.exec(select(func.count()).select_from(AlertRow)
                              .where(col(AlertRow.proposal_id).is_not(None))).one()
            proposals = s.exec(select(func.count()).select_from(ProposalRow)).one()
        return {"alerts": int(total), "firing": int(firing), "attached": int(attached), "proposals": int(proposals)}
