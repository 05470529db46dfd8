"""Would a rollback of this model work right now? Each piece the rollback path needs, checked one by one.

A rollback fails at the worst moment when something it relies on has quietly broken: the target's
credentials expired, nothing stable to return to, an approver group renamed, the bot removed from the
channel, a metric query that no longer returns data. CI asks this before a deployment (``GET
/api/models/{model}/readiness``, ``rollback-bot ready MODEL``) so a broken path is found while nobody is
on fire. The checks only read: nothing here switches, posts or writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.core.errors import RollbackError
from bot.core.metrics import MetricsSource
from bot.core.policy import ModelPolicy
from bot.core.selection import Deployment, choose_target, last_stable

CHECKS = ("policy", "target", "version", "approvers", "escalation", "channel", "metrics")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    model: str
    checks: tuple[Check, ...]
    rollback_to: str | None = None

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def summary(self) -> str:
        """One line for answers that fold readiness into a larger verdict (e.g. whether to deploy)."""
        if self.ready:
            return f"a rollback of {self.model} would work now" + (f" (to {self.rollback_to})" if self.rollback_to
                                                                   else "")
        return f"a rollback of {self.model} would not work now: " + "; ".join(
            f"{c.name}: {c.detail}" for c in self.checks if not c.ok)


class ProbeError(RollbackError):
    """A probe could not get an answer; the message is safe to show (no secrets)."""


class TargetProbe(Protocol):
    """The target's own connection check for one model (what `check --connect` does for every model)."""

    def probe(self, model: str, policy: ModelPolicy) -> str:
        """What was found, in words; raise on anything that would stop a switch."""
        ...


class SlackProbe(Protocol):
    """What the bot can see in Slack with its own token."""

    def is_group(self, approver: str) -> bool:
        """Whether a policy entry names a user group (Slack's id rule lives in the Slack adapter)."""
        ...

    def group_members(self, group_id: str) -> set[str]:
        """The group's members; raise ProbeError when the group does not resolve."""
        ...

    def user_found(self, user_id: str) -> bool: ...

    def bot_in_channel(self, channel: str) -> bool:
        """Raise ProbeError when the channel cannot be seen at all."""
        ...


class HistoryReader(Protocol):
    def history(self, model: str) -> list[Deployment]: ...


def invalid_policy(model: str, problems: Sequence[str]) -> Readiness:
    """Without a valid policy for the model nothing else can be checked: one failing check says why."""
    why = "; ".join(problems) or f"the policy file has no model {model}"
    return Readiness(model, (Check("policy", False, why[:1000]),))


def _guard(name: str, run: Callable[[], Check]) -> Check:
    """A check that raises is a failed check naming why, never an error of the whole report."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001  any failure of a probe is that check's answer
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(name, False, text[:500])


def _run_all(jobs: Mapping[str, Callable[[], Check]], budget_s: float | None) -> list[Check]:
    pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="readiness")
    futures = {name: pool.submit(_guard, name, job) for name, job in jobs.items()}
    wait(futures.values(), timeout=budget_s)
    pool.shutdown(wait=False, cancel_futures=True)  # a probe past the budget ends on its own timeout
    return [f.result() if f.done() else Check(name, False, f"no answer within {budget_s:g} s")
            for name, f in futures.items()]


def after_deploying(history: Sequence[Deployment], model: str, version: str | None,
                    now: datetime) -> list[Deployment]:
    """The history as it would be once ``version`` is deployed (unchanged when it already runs)."""
    if version is None or (history and history[-1].version == version):
        return list(history)
    return [*history, Deployment(0, model, version, now, source="prospective")]


class ReadinessCheck:
    """The use case: every check for one model, in the order a rollback needs them."""

    def __init__(self, history: HistoryReader, target: TargetProbe, slack: SlackProbe | None,
                 metrics: MetricsSource | None, now: Callable[[], datetime]) -> None:
        self.store = history
        self.target = target
        self.slack = slack
        self.metrics = metrics
        self.now = now

    def run(self, model: str, policy: ModelPolicy | None, problems: Sequence[str] = (), *,
            budget_s: float | None = None, deploying: str | None = None) -> Readiness:
        """``policy`` None means the policy file does not define a valid ``model``; ``problems`` say why.

        The probes run side by side; with ``budget_s`` a probe still waiting then fails its check (an HTTP
        answer must not wait for a target's own, longer timeout). With ``deploying`` the version check asks
        about the rollback *of that deployment*: CI asks before it deploys, so "a version to return to" must
        count the version running now, not the one before it."""
        if policy is None or problems:
            return invalid_policy(model, problems)
        choice: list[str] = []
        jobs: dict[str, Callable[[], Check]] = {
            "target": lambda: self._target(model, policy),
            "version": lambda: self._version(model, choice, deploying),
            "approvers": lambda: self._people("approvers", policy.approvers, policy.required_approvals),
            "escalation": lambda: self._escalation(policy),
            "channel": lambda: self._channel(policy),
            "metrics": lambda: self._metrics(policy),
        }
        first = Check("policy", True, f"{model}: target {policy.target}, {policy.required_approvals} approval(s), "
                                      f"automatic at {policy.auto_rollback_severity}"
                                      + (", dry run" if policy.dry_run else ""))
        return Readiness(model, (first, *_run_all(jobs, budget_s)), choice[0] if choice else None)

    def _target(self, model: str, policy: ModelPolicy) -> Check:
        return Check("target", True, self.target.probe(model, policy))

    def _version(self, model: str, chosen: list[str], deploying: str | None) -> Check:
        history = after_deploying(self.store.history(model), model, deploying, self.now())
        picked = choose_target(model, history)  # raises NoRollbackTarget: the check fails with its words
        chosen.append(picked.to_version)
        stable = last_stable(history)
        warn = "" if stable is not None else " (no earlier version became stable)"
        when = f"after deploying {deploying}" if deploying is not None else "now"
        return Check("version", True, f"a rollback {when} goes from {picked.from_version} to "
                                      f"{picked.to_version}: {picked.note}{warn}")

    def _resolve(self, entries: Sequence[str]) -> tuple[set[str], list[str]]:
        """(people, problems): users that exist and members of groups that resolve."""
        if self.slack is None:
            raise ProbeError("Slack is not configured (SLACK_BOT_TOKEN): nobody can be asked")
        people: set[str] = set()
        problems: list[str] = []
        for entry in entries:
            if self.slack.is_group(entry):
                try:
                    members = self.slack.group_members(entry)
                except ProbeError as exc:
                    problems.append(f"group {entry} does not resolve ({exc})")
                    continue
                if not members:
                    problems.append(f"group {entry} has no members")
                people |= members
            elif self.slack.user_found(entry):
                people.add(entry)
            else:
                problems.append(f"user {entry} is not found or deactivated")
        return people, problems

    def _people(self, name: str, entries: Sequence[str], needed: int) -> Check:
        if not entries:
            return Check(name, True, "none listed: anyone in the channel may approve")
        people, problems = self._resolve(entries)
        if problems:
            return Check(name, False, "; ".join(problems))
        if len(people) < needed:
            return Check(name, False, f"{len(people)} person(s) resolve, fewer than the {needed} approvals needed")
        return Check(name, True, f"{len(people)} person(s) resolve from {', '.join(entries)}")

    def _escalation(self, policy: ModelPolicy) -> Check:
        if not policy.escalate_to:
            return Check("escalation", True, f"nobody to escalate to (on_timeout = {policy.on_timeout})")
        return self._people("escalation", policy.escalate_to, 1)

    def _channel(self, policy: ModelPolicy) -> Check:
        if not policy.channel:
            return Check("channel", False, "no channel in the policy: the card cannot be posted")
        if self.slack is None:
            return Check("channel", False, "Slack is not configured (SLACK_BOT_TOKEN): the card cannot be posted")
        if not self.slack.bot_in_channel(policy.channel):
            return Check("channel", False, f"the bot is not a member of {policy.channel}: invite it "
                                           f"(/invite @rollback-bot in that channel)")
        return Check("channel", True, f"the bot is a member of {policy.channel}")

    def _metrics(self, policy: ModelPolicy) -> Check:
        if not policy.metrics:
            return Check("metrics", True, f"no metrics in the policy: verification follows no_data = "
                                          f"{policy.no_data}")
        if self.metrics is None:
            return Check("metrics", False, "the policy has metrics but PROMETHEUS_URL is not set: the rollback "
                                           "cannot be verified")
        now = self.now()
        empty = []
        for name, expr in policy.metrics.items():
            if self.metrics.query(expr, now) is None:
                empty.append(name)
        if empty:
            return Check("metrics", False, f"no data now for: {', '.join(empty)}")
        return Check("metrics", True, f"{len(policy.metrics)} metric(s) return data")


__all__ = ["CHECKS", "Check", "HistoryReader", "ProbeError", "Readiness", "ReadinessCheck", "SlackProbe",
           "TargetProbe", "after_deploying", "invalid_policy"]
