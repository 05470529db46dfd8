"""After a rollback: did the metrics recover? If not, stop and call people instead of rolling back again."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from bot.core.audit import AuditEvent
from bot.core.clock import Clock
from bot.core.events import AuditAction, CardEvent, verified_action
from bot.core.metrics import MetricLine, Recovery, Verdict, verify
from bot.core.policy import ModelPolicy, Policy
from bot.core.ports import DeploymentTarget, MetricSummaries, Notifier, NullNotifier, VerificationStore
from bot.core.proposal import Proposal

log = logging.getLogger(__name__)

ACTOR = "bot:verification"


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class Verifier:
    def __init__(self, store: VerificationStore, policy: Policy, targets: Mapping[str, DeploymentTarget],
                 insight: MetricSummaries | None, clock: Clock, notifier: Notifier | None = None) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.insight = insight
        self.clock = clock
        self.notifier: Notifier = notifier or NullNotifier()

    def sweep(self) -> list[Proposal]:
        """Every succeeded rollback whose `verify_after` has passed, checked once (compare-and-set)."""
        done = []
        for proposal in self.store.due_verifications(self.clock.now()):
            result = self.check(proposal)
            if result is not None:
                done.append(result)
        return done

    def verdict(self, proposal: Proposal, policy: ModelPolicy) -> tuple[Verdict, list[MetricLine]]:
        before = [MetricLine.from_dict(m) for m in proposal.summary.get("metrics", [])]
        exprs = dict(proposal.summary.get("exprs") or {}) or dict(policy.metrics)
        deployed_at = _parse_time(proposal.summary.get("deployed_at"))
        now_lines = self.insight.summarise(policy, deployed_at, exprs) if self.insight and exprs else []
        since = proposal.finished_at or self.clock.now()
        firing = self.store.quiet_since(proposal.model, since, proposal.to_version) is None
        verdict = verify(before, now_lines, firing, policy.no_data)
        target = self.targets.get(policy.target)
        served = target.served_version(proposal.model, policy.target_settings) if target else None
        if served is not None and served != proposal.to_version:
            verdict = Verdict(Recovery.NOT_RECOVERED,
                              f"{policy.target} serves version {served}, not {proposal.to_version}", verdict.details)
        return verdict, now_lines

    def check(self, proposal: Proposal) -> Proposal | None:
        policy = self.policy.model(proposal.model)
        if policy is None:
            return None
        verdict, now_lines = self.verdict(proposal, policy)
        label = {Recovery.RECOVERED: "recovered", Recovery.NOT_RECOVERED: "not recovered",
                 Recovery.INCONCLUSIVE: "inconclusive"}[verdict.outcome]
        text = f"{label}: {verdict.reason}"
        if verdict.details:
            text += " (" + "; ".join(verdict.details) + ")"
        won = self.store.set_verification(proposal.id, text, AuditEvent(
            actor=ACTOR, action=verified_action(verdict.outcome.value), model=proposal.model,
            from_version=proposal.from_version, to_version=proposal.to_version, reason=text,
            inputs={"verdict": verdict.to_dict(), "metrics_now": [m.to_dict() for m in now_lines]}))
        if not won:
            return None
        detail = f"Verification: {text}"
        if verdict.outcome is not Recovery.RECOVERED:
            reason = f"rollback #{proposal.id} was {label} at verification"
            self.store.set_auto_blocked(proposal.model, reason, AuditEvent(
                actor=ACTOR, action=AuditAction.AUTO_ROLLBACK_PAUSED, model=proposal.model, proposal_id=proposal.id,
                reason=f"{reason}; automatic rollbacks of {proposal.model} wait for a person "
                       "(a new deployment or a person's rollback resumes them)"))
            who = " ".join(policy.approvers) or "approvers"
            detail = (f"Verification: {text}\n{who}: automatic rollbacks of {proposal.model} are paused "
                      "until a person acts.")
        updated = self.store.get_proposal(proposal.id)
        try:
            self.notifier.changed(updated, CardEvent.VERIFICATION, detail)
        except Exception:
            log.exception("notifying the verification of #%s failed", proposal.id)
        return updated
