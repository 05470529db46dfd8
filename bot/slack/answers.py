"""What `/rollback` answers: each parsed command turned into a short mrkdwn reply (runs in a worker thread)."""

from __future__ import annotations

from datetime import timedelta

from bot.bootstrap import Container
from bot.core.actor import Actor
from bot.core.durations import format_duration
from bot.core.errors import RollbackError
from bot.core.proposal import Kind
from bot.core.requests import RollbackRequest
from bot.core.selection import last_stable
from bot.slack.commands import (
    USAGE,
    Audit,
    Command,
    Drill,
    Freeze,
    Help,
    History,
    Report,
    Rollback,
    Status,
    Unblock,
    Unfreeze,
    Versions,
)
from bot.slack.mrkdwn import escape, mention, mention_ids

DEFAULT_FREEZE = timedelta(hours=2)
MAX_AUDIT_ROWS = 20


class Answers:
    def __init__(self, container: Container) -> None:
        self.c = container

    def answer(self, command: Command, actor: Actor) -> str:
        """Permissions are the core's (``service.authorize`` inside each use case): nothing is checked here."""
        try:
            if isinstance(command, Help):
                return USAGE
            if isinstance(command, Status):
                return self.status(command.model)
            if isinstance(command, Versions):
                return self.versions(command.model)
            if isinstance(command, History):
                return self.history(command.model, command.limit)
            if isinstance(command, Audit):
                return self.audit(command)
            if isinstance(command, Rollback):
                return self.rollback(command, actor)
            if isinstance(command, Freeze):
                return self.freeze(command, actor)
            if isinstance(command, Unfreeze):
                return self.unfreeze(command.model, actor)
            if isinstance(command, Unblock):
                return self.unblock(command, actor)
            if isinstance(command, Drill):
                return self.drill(command.model, actor)
            if isinstance(command, Report):  # report hook
                from bot.report.wiring import reports_for
                from bot.slack.report_blocks import report_text

                reports = reports_for(self.c)
                return report_text(reports.build(command.proposal_id), reports.page_url(command.proposal_id))
        except RollbackError as exc:
            return f":warning: {mention_ids(str(exc))}"
        return USAGE

    def status(self, model: str | None) -> str:
        store, now = self.c.store, self.c.clock.now()
        names = [model] if model else sorted(self.c.policy.models)
        if model:
            self.c.service.model_policy(model)
        lines = []
        for name in names:
            history = store.history(name)
            state = store.model_state(name)
            current = history[-1].version if history else "nothing deployed"
            bits = [f"*{escape(name)}*: {escape(current)}"]
            stable = last_stable(history)
            if stable:
                bits.append(f"last stable {escape(stable.version)}")
            if state.frozen(now):
                bits.append(f":snowflake: frozen until {state.frozen_until:%H:%M} UTC")
            blocked = [b.version for b in self.c.service.blocked_versions(name)]
            if blocked:
                bits.append(f":no_entry: blocked {', '.join(escape(v) for v in blocked)}")
            open_p = store.open_proposal(name)
            if open_p:
                bits.append(f"proposal #{open_p.id} {open_p.state.value} ({open_p.from_version} → {open_p.to_version})")
            lines.append(" · ".join(bits))
        return "\n".join(lines) or "no models configured"

    def versions(self, model: str) -> str:
        blocked = {b.version: b for b in self.c.service.blocked_versions(model)}
        history = self.c.store.history(model)
        if not history:
            return f"{escape(model)} has no recorded deployment"
        lines = []
        shown: set[str] = set()
        for i, d in enumerate(reversed(history)):
            marks = []
            if i == 0:
                marks.append("live")
            if d.stable_at:
                marks.append("stable")
            if d.rolled_back_at:
                marks.append("rolled back")
            if d.version in blocked and d.version not in shown:
                marks.append(f":no_entry: blocked since {blocked[d.version].blocked_at:%Y-%m-%d %H:%M} UTC by "
                             f"{mention(blocked[d.version].blocked_by)}")
            shown.add(d.version)
            lines.append(f"`{escape(d.version)}` {d.deployed_at:%Y-%m-%d %H:%M} by {mention(d.deployed_by or '?')}"
                         + (f" ({', '.join(marks)})" if marks else ""))
        hint = (f"\nBlocked versions are refused by `POST /deployments` until an approver runs "
                f"`/rollback unblock {escape(model)} VERSION [reason]`." if blocked else "")
        return f"*{escape(model)}* versions, newest first:\n" + "\n".join(lines[:30]) + hint

    def history(self, model: str, limit: int) -> str:
        self.c.service.model_policy(model)
        proposals = self.c.store.proposals(model=model, limit=limit)
        if not proposals:
            return f"no rollbacks of {escape(model)} yet"
        lines = []
        for p in proposals:
            took = f" in {p.duration_s:.1f} s" if p.duration_s is not None else ""
            by = f" by {mention(p.decided_by)}" if p.decided_by else ""
            lines.append(f"#{p.id} {p.created_at:%Y-%m-%d %H:%M} {p.from_version} → {p.to_version}: "
                         f"*{p.state.value}*{by}{took} — {escape(p.reason[:80])}")
        return f"*{escape(model)}* rollback history:\n" + "\n".join(lines)

    def audit(self, cmd: Audit) -> str:
        if cmd.model:
            self.c.service.model_policy(cmd.model)
        since = self.c.clock.now() - cmd.since
        actor = None
        if cmd.by:
            actor = str(Actor.slack_user(cmd.by)) if cmd.by[:1] in "UW" and cmd.by.upper() == cmd.by else cmd.by
        rows = self.c.store.audit_records(model=cmd.model, since=since, actor=actor, limit=MAX_AUDIT_ROWS,
                                          newest_first=True)
        if not rows:
            return f"no audit rows since {format_duration(cmd.since)} ago"
        lines = [f"`{r.at:%m-%d %H:%M}` {mention(r.actor)} *{r.action}* {escape(r.model or '')}"
                 + (f" {r.from_version or '?'}→{r.to_version}" if r.to_version else "")
                 + (f" #{r.proposal_id}" if r.proposal_id else "")
                 + (f" — {escape((r.reason or '')[:100])}" if r.reason else "") for r in rows]
        more = " (newest 20; use `rollback-bot audit export` for all)" if len(rows) == MAX_AUDIT_ROWS else ""
        return f"audit trail{more}:\n" + "\n".join(lines)

    def rollback(self, cmd: Rollback, actor: Actor) -> str:
        created = self.c.service.request_rollback(RollbackRequest(
            cmd.model, actor=actor, reason=cmd.reason or "asked in Slack",
            to_version=cmd.to_version, kind=Kind.MANUAL))
        p = self.c.store.get_proposal(created.id)  # re-read: the card was posted after creation
        where = f" in <#{p.slack_channel}>" if p.slack_channel else ""
        return (f"proposal #{p.id} to roll {escape(p.model)} back from {p.from_version} to {p.to_version} "
                f"is posted{where}; it needs {p.required_approvals} approval(s).")

    def freeze(self, cmd: Freeze, actor: Actor) -> str:
        duration = cmd.duration or DEFAULT_FREEZE
        until = self.c.service.freeze(cmd.model, actor=actor, duration=duration, reason=cmd.reason or None)
        return f":snowflake: {escape(cmd.model)} is frozen for {format_duration(duration)} (until {until:%H:%M} UTC)."

    def unblock(self, cmd: Unblock, actor: Actor) -> str:
        lifted = self.c.service.unblock(cmd.model, cmd.version, actor=actor, reason=cmd.reason or None)
        return (f":white_check_mark: version `{escape(lifted.version)}` of {escape(lifted.model)} is no longer "
                f"blocked: it may be deployed again (it stays out of automatic rollback targets).")

    def unfreeze(self, model: str, actor: Actor) -> str:
        self.c.service.unfreeze(model, actor=actor)
        return f"{escape(model)} is no longer frozen."

    def drill(self, model: str, actor: Actor) -> str:
        """Runs here, after the ack; the card and its thread go out through the Slack sender worker."""
        from bot.readiness_wiring import drill

        result = drill(self.c).run(model, actor)
        where = f"; the card and each step's time are posted in <#{result.posted_to}>" if result.posted_to else ""
        failing = ", ".join(s.name for s in result.steps if not s.ok)
        verdict = "every step passed" if result.ok else f"failed at {failing}"
        return (f":test_tube: drill of {escape(model)}: {verdict} in {result.seconds * 1000:.0f} ms, nothing was "
                f"switched{where}.")
