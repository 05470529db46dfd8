"""A rollback drill: the whole path walked in dry run, each step timed, nothing switched or counted.

Teams rehearse what they must do under stress. A drill makes up an alert for the model, asks the policy what
it would decide, picks the version to return to, draws the card, has the drill's requester stand in for the
approval, asks the target what its switch would call (``describe``: calls nothing) and runs the
verification queries. The result goes to the model's channel as a card marked as a drill, with each step and
the time it took in its thread. It is audited as ``drill.passed`` or ``drill.failed`` and opens no proposal,
so incident counts, cooldowns and the model's versions stay exactly as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from bot.core.actor import Actor, ActorKind
from bot.core.alert import Alert, AlertStatus
from bot.core.audit import AuditEvent
from bot.core.authorization import REFUSED_AUDIT, Act, authorize
from bot.core.errors import Refused, UnknownModel
from bot.core.events import AuditAction
from bot.core.metrics import MetricsSource
from bot.core.policy import Action, ModelPolicy, ModelState, Policy, decide
from bot.core.ports import ApproverDirectory, DeploymentTarget, SwitchRequest
from bot.core.proposal import Kind, Proposal, State
from bot.core.selection import Choice, Deployment, choose_target
from bot.core.severity import Severity

STEPS = ("alert", "decision", "version", "card", "approval", "switch", "verification")
DRILL_ID = 0  # the id the drill's card carries: no proposal row exists, so no button can act on it


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class DrillResult:
    model: str
    actor: str
    steps: tuple[Step, ...]
    from_version: str | None = None
    to_version: str | None = None
    posted_to: str | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def lines(self) -> list[str]:
        return [f"{'ok ' if s.ok else 'FAIL'} {s.name:<12} {s.seconds * 1000:8.1f} ms  {s.detail}" for s in self.steps]


@dataclass(frozen=True)
class ChannelPost:
    """A message owed to a channel that belongs to no proposal: the card, then replies in its thread."""

    kind: str
    channel: str
    message: Mapping[str, Any]
    replies: tuple[str, ...] = ()


class CardRenderer(Protocol):
    def card(self, proposal: Proposal, drill_note: str) -> Mapping[str, Any]:
        """The message as it would be posted (text and blocks), marked as a drill, without buttons."""
        ...

    def result(self, result: DrillResult) -> str:
        """The thread reply listing each step with its time."""
        ...


class DrillStore(Protocol):
    def history(self, model: str) -> list[Deployment]: ...
    def model_state(self, model: str) -> ModelState: ...
    def record_drill(self, audit: AuditEvent, post: ChannelPost | None) -> None:
        """The audit row and the post in one transaction."""
        ...

    def append_audit(self, event: AuditEvent) -> Any: ...


@dataclass
class _Walk:
    """What the steps hand each other."""

    policy: ModelPolicy
    actor: str
    severity: Severity = Severity.WARNING
    action: Action | None = None
    decision: str = ""
    choice: Choice | None = None
    card: Mapping[str, Any] = field(default_factory=dict)
    proposal: Proposal | None = None


class Drill:
    def __init__(self, policy: Policy, store: DrillStore, targets: Mapping[str, DeploymentTarget],
                 directory: ApproverDirectory, metrics: MetricsSource | None, cards: CardRenderer,
                 now: Callable[[], datetime], timer: Callable[[], float] = time.perf_counter) -> None:
        self.policy = policy
        self.store = store
        self.targets = targets
        self.directory = directory
        self.metrics = metrics
        self.cards = cards
        self.now = now
        self.timer = timer

    def run(self, model: str, actor: Actor | str) -> DrillResult:
        """Walk every step; refuse (audited) when ``actor`` may not drill this model. Raises UnknownModel."""
        who = Actor.of(actor)
        actor = str(who)
        mp = self.policy.model(model)
        if mp is None:
            raise UnknownModel(model, list(self.policy.models))
        verdict = authorize(who, Act.DRILL, mp, self.directory)
        if not verdict.allowed:
            self.store.append_audit(AuditEvent(actor=actor, action=REFUSED_AUDIT[Act.DRILL], model=model,
                                               reason=verdict.reason))
            raise Refused(verdict.reason)
        walk = _Walk(mp, actor)
        steps = [self._timed("alert", lambda: self._alert(walk)),
                 self._timed("decision", lambda: self._decision(walk)),
                 self._timed("version", lambda: self._version(walk))]
        found = walk.choice is not None  # the card, the approval and the switch need a version to return to
        steps += [self._timed("card", lambda: self._card(walk), needs=found),
                  self._timed("approval", lambda: self._approval(walk), needs=found),
                  self._timed("switch", lambda: self._switch(walk), needs=found),
                  self._timed("verification", lambda: self._verification(walk))]
        result = DrillResult(model, actor, tuple(steps), walk.choice.from_version if walk.choice else None,
                             walk.choice.to_version if walk.choice else None, mp.channel)
        self._record(walk, result)
        return result

    # ---- the steps ---------------------------------------------------------------------------------------

    def _timed(self, name: str, run: Callable[[], str], *, needs: bool = True) -> Step:
        if not needs:
            return Step(name, False, 0.0, "skipped: there is no version to return to")
        start = self.timer()
        try:
            detail, ok = run(), True
        except _Failed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001  a failing step is the drill's finding, not a crash
            detail, ok = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:500], False
        return Step(name, ok, max(self.timer() - start, 0.0), detail)

    def _alert(self, w: _Walk) -> str:
        w.severity = max(w.policy.min_severity, Severity.WARNING)
        labels = {**(w.policy.match or {"model": w.policy.name}), "severity": str(w.severity)}
        alert = Alert(source="drill", fingerprint=f"drill-{w.policy.name}", status=AlertStatus.FIRING,
                      name="RollbackDrill", labels=labels, severity=w.severity, starts_at=self.now())
        routed = self.policy.model_for_labels(alert.labels)
        if routed is None or routed.name != w.policy.name:
            raise _Failed(f"a synthetic alert with labels {labels} is routed to "
                          f"{routed.name if routed else 'no model'}, not {w.policy.name}")
        return f"synthetic {alert.severity} alert {alert.name} with labels {labels} routes to {w.policy.name}"

    def _decision(self, w: _Walk) -> str:
        decision = decide(w.severity, w.policy, self.store.model_state(w.policy.name), self.now())
        w.action, w.decision = decision.action, decision.reason
        if decision.action is Action.IGNORE:
            raise _Failed(f"the policy would ignore it: {decision.reason}")
        verb = "roll back at once" if decision.action is Action.AUTO_EXECUTE else "propose a rollback"
        return f"the policy would {verb}: {decision.reason}"

    def _version(self, w: _Walk) -> str:
        w.choice = choose_target(w.policy.name, self.store.history(w.policy.name))
        return f"{w.choice.from_version} → {w.choice.to_version}: {w.choice.note}"

    def _card(self, w: _Walk) -> str:
        assert w.choice is not None
        w.proposal = Proposal(
            id=DRILL_ID, model=w.policy.name, from_version=w.choice.from_version, to_version=w.choice.to_version,
            state=State.PROPOSED, kind=Kind.ALERT, requested_by="bot:drill", reason="rollback drill",
            target_note=w.choice.note, severity=str(w.severity), decision_reason=w.decision,
            required_approvals=w.policy.required_approvals, dry_run=True, created_at=self.now())
        w.card = self.cards.card(w.proposal, "")
        return f"card drawn ({len(w.card.get('blocks') or [])} blocks) for {w.policy.channel or 'no channel'}"

    def _approval(self, w: _Walk) -> str:
        if w.action is Action.AUTO_EXECUTE:
            return "not needed: at this severity the policy rolls back without waiting"
        if Actor.of(w.actor).kind is not ActorKind.SLACK_USER:
            return (f"stood in for by {w.actor}; in chat it needs {w.policy.required_approvals} approval(s) from "
                    f"{', '.join(w.policy.approvers) or 'anyone in the channel'}")
        verdict = authorize(Actor.of(w.actor), Act.APPROVE, w.policy, self.directory, requested_by="bot:drill")
        if not verdict.allowed:
            raise _Failed(verdict.reason)
        return f"{w.actor} may approve ({w.policy.required_approvals} approval(s) needed)"

    def _switch(self, w: _Walk) -> str:
        assert w.choice is not None
        target = self.targets.get(w.policy.target)
        if target is None:
            raise _Failed(f"target {w.policy.target} is not available in this process")
        request = SwitchRequest(w.policy.name, w.choice.from_version, w.choice.to_version, DRILL_ID,
                                "rollback drill", w.policy.target_settings)
        live = target.current_version(w.policy.name, w.policy.target_settings)
        return (f"dry run, nothing switched: would {target.describe(request)} "
                f"(the target reports {live or 'no version'} live)")

    def _verification(self, w: _Walk) -> str:
        if not w.policy.metrics:
            return f"no metrics in the policy: verification would follow no_data = {w.policy.no_data}"
        if self.metrics is None:
            raise _Failed("the policy has metrics but PROMETHEUS_URL is not set: nothing would be verified")
        now = self.now()
        values = {name: self.metrics.query(expr, now) for name, expr in w.policy.metrics.items()}
        empty = [name for name, value in values.items() if value is None]
        if empty:
            raise _Failed(f"no data now for: {', '.join(empty)}")
        return "; ".join(f"{name} = {value:.4g}" for name, value in values.items() if value is not None)

    # ---- the record --------------------------------------------------------------------------------------

    def _record(self, w: _Walk, result: DrillResult) -> None:
        post = None
        if w.policy.channel:
            proposal = w.proposal or _placeholder(w, self.now())
            done = replace(proposal, state=State.SUCCEEDED if result.ok else State.FAILED,
                           decided_by=w.actor, result="drill: nothing was switched",
                           error=None if result.ok else f"drill failed at {', '.join(_failing(result))}")
            note = "passed" if result.ok else "failed"
            post = ChannelPost("drill", w.policy.channel, self.cards.card(done, note), (self.cards.result(result),))
        summary = "every step passed" if result.ok else f"failed: {', '.join(_failing(result))}"
        self.store.record_drill(AuditEvent(
            actor=w.actor, action=AuditAction.DRILL_PASSED if result.ok else AuditAction.DRILL_FAILED,
            model=w.policy.name,
            from_version=result.from_version, to_version=result.to_version,
            reason=f"rollback drill of {w.policy.name}, nothing switched: {summary}",
            inputs={"steps": [{"name": s.name, "ok": s.ok, "ms": round(s.seconds * 1000, 1), "detail": s.detail}
                              for s in result.steps]}), post)


class _Failed(Exception):
    """A step found a problem; its message is the finding."""


def _failing(result: DrillResult) -> Sequence[str]:
    return [s.name for s in result.steps if not s.ok]


def _placeholder(w: _Walk, now: datetime) -> Proposal:
    """The card of a drill that found no version to return to."""
    return Proposal(id=DRILL_ID, model=w.policy.name, from_version="?", to_version="?", state=State.FAILED,
                    kind=Kind.ALERT, requested_by="bot:drill", reason="rollback drill", target_note="",
                    severity=str(w.severity), decision_reason=w.decision,
                    required_approvals=w.policy.required_approvals, dry_run=True, created_at=now)


__all__ = ["STEPS", "CardRenderer", "ChannelPost", "Drill", "DrillResult", "DrillStore", "Step"]
