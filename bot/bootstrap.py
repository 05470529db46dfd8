"""The composition root: config, store, adapters, scheduler and Slack are wired here and nowhere else.

Tests build the same graph through `build()` with fakes passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from adapters.targets import TARGET_FACTORIES
from adapters.targets import local as local_target
from adapters.targets.local import LocalTarget
from bot.audit_config import key_ring as audit_key_ring
from bot.config import Settings, reveal
from bot.core.clock import Clock, SystemClock
from bot.core.execution import ApprovedQueue, Executor
from bot.core.intake import AlertBatch, AlertIntake, IntakeResult
from bot.core.metrics import MetricsSource
from bot.core.policy import Policy
from bot.core.ports import ApproverDirectory, DeploymentTarget, Notifier, UnitOfWork, ValidatesSettings
from bot.core.service import RollbackService
from bot.core.verification import Verifier
from bot.database_health import one_request_fault
from bot.insight import MetricInsight, chart_provider, summary_hook
from bot.policy_file import PolicyFileError, TargetValidator, load_policy
from bot.slack.audit_channel import AuditChannelSender, renderer
from bot.slack.client import outbox_client, web_client
from bot.slack.directory import SlackDirectory
from bot.slack.notifier import OutboxNotifier, SlackSender
from bot.store.db import make_engine
from bot.store.repository import SqlStore
from bot.web.group_commit import GroupCommit
from bot.web.hints import metric_hints
from bot.workers.audit_watch import AuditWatch
from bot.workers.decider import Decider
from bot.workers.executor import ExecutorWorker, LeasedRunNow, WorkerQueue
from bot.workers.leasing import held, worker_id
from bot.workers.loop import DECIDE, EXECUTE, SLACK, SLACK_SETTLE_S, Loop, Signals
from bot.workers.wakeup import PgListener

log = logging.getLogger(__name__)


def remote_targets(credentials: Mapping[str, str] | None = None) -> dict[str, DeploymentTarget]:
    """Every target adapter that needs no database, from the registry in adapters/targets.

    ``credentials`` (``Settings.credentials()``: the environment and `.env`) is what the targets read their
    tokens from by name; None means the process environment.
    """
    return {name: factory(env=credentials) for name, factory in TARGET_FACTORIES.items()}


def target_validators(credentials: Mapping[str, str] | None = None) -> dict[str, TargetValidator]:
    """Each target's settings check, for the policy file loader and `rollback-bot check`."""
    validators: dict[str, TargetValidator] = {"local": local_target.validate}
    for name, target in remote_targets(credentials).items():
        if isinstance(target, ValidatesSettings):
            validators[name] = target.validate
    return validators


def target_names() -> tuple[str, ...]:
    """Every target the policy file may name: `local` plus the registry in adapters/targets."""
    return ("local", *TARGET_FACTORIES)


def read_policy(path: str, credentials: Mapping[str, str] | None = None) -> Policy:
    loaded = load_policy(path, target_validators(credentials), target_names())
    if loaded.policy is None:
        raise PolicyFileError(loaded.problems)
    return loaded.policy


@dataclass(frozen=True)
class WorkerTimings:
    lease_s: float = 15.0  # an executor or decider that died is replaced after this long
    poll_s: float = 1.0  # the fallback when a wake-up (in-process or NOTIFY) was lost
    deadline_s: float = 4.5  # every HTTP request answered (503 at worst) within this long


Inbox = GroupCommit[AlertBatch, tuple[IntakeResult, list[int]]]


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: SqlStore
    policy: Policy
    service: RollbackService
    clock: Clock
    intake: AlertIntake
    decider: Decider
    executor: ExecutorWorker
    signals: Signals
    timings: WorkerTimings
    owner: str
    run_workers: bool = False
    slack_sender: SlackSender | None = None
    insight: MetricInsight | None = None
    inbox: Inbox | None = None  # `serve`: alert requests share transactions (bot/web/group_commit.py)
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.inbox is not None:
            self.inbox.close()
        self.executor.close()
        self.engine.dispose()


def build(
    settings: Settings,
    *,
    policy: Policy | None = None,
    clock: Clock | None = None,
    engine: Engine | None = None,
    targets: Mapping[str, DeploymentTarget] | None = None,
    notifier: Notifier | None = None,
    directory: ApproverDirectory | None = None,
    metrics: MetricsSource | None = None,
    run_workers: bool = False,
) -> Container:
    """The whole graph. ``run_workers``: requests only record and the workers act (``serve``); otherwise
    (CLI, embedded use, tests) the same decider and executor run in the caller's thread, under the same leases.
    """
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url)
    store = SqlStore(engine, clock, audit_keys=audit_key_ring(settings))  # AUDIT_HMAC_KEY(S)
    credentials = settings.credentials()
    policy = policy or read_policy(settings.policy_path, credentials)
    timings = WorkerTimings(settings.executor_lease_seconds, settings.worker_poll_seconds,
                            settings.request_deadline_seconds)
    signals = Signals()
    owner = worker_id()
    all_targets: dict[str, DeploymentTarget] = {"local": LocalTarget(store)}
    all_targets.update(remote_targets(credentials) if targets is None else targets)
    if metrics is None and settings.prometheus_url:
        from adapters.metrics.prometheus import PrometheusSource

        metrics = PrometheusSource(settings.prometheus_url, token=reveal(settings.prometheus_token))
    insight = MetricInsight(metrics, clock) if metrics is not None else None
    bot_token = reveal(settings.slack_bot_token)
    slack_client = web_client(bot_token, settings.slack_api_url) if bot_token else None
    if directory is None and slack_client is not None:
        directory = SlackDirectory(slack_client)
    notifier = notifier or OutboxNotifier(store, wake_after_commit(store, signals, SLACK))
    verification = insight is not None
    executor = Executor(store, policy, all_targets, clock, notifier, verification)
    executor_worker = ExecutorWorker(executor, store, owner, timings.lease_s)
    queue: ApprovedQueue = (WorkerQueue(store, executor_worker.take, lambda: signals.wake(EXECUTE)) if run_workers
                            else LeasedRunNow(executor, store, owner, timings.lease_s))
    service = RollbackService(store, policy, all_targets, clock, notifier=notifier, directory=directory,
                              summarise=summary_hook(insight) if insight is not None else None,
                              verification_enabled=verification, executor=executor, queue=queue)
    intake = AlertIntake(service, store, clock, metric_hints)
    sender = None
    if bot_token:
        charts = chart_provider(insight, policy) if insight is not None else None
        sender = SlackSender(outbox_client(bot_token, settings.slack_api_url), store, policy,
                             settings.public_url, charts)
    container = Container(settings, engine, store, policy, service, clock, intake,
                          Decider(intake, store, owner, timings.lease_s),
                          executor_worker, signals, timings, owner,
                          run_workers, sender, insight,
                          GroupCommit(intake.record_many, retry_alone=one_request_fault) if run_workers else None)
    if sender is not None and bot_token:
        container.extras["audit_watch"] = audit_watch(container, bot_token)
        container.extras["readiness_warnings"] = lambda: outbox_warnings(store)
        from bot.slack.report_post import attach_report_poster  # report hook: the report in the card's thread

        attach_report_poster(container, sender)
    return container


def wake_after_commit(store: UnitOfWork, signals: Signals, worker: str) -> Callable[[], None]:
    """Wake a worker of this process once the caller's writes are committed, so it never looks before they
    are there (other processes hear PostgreSQL's NOTIFY, which is delivered at commit anyway)."""
    return lambda: store.after_commit(lambda: signals.wake(worker))


def audit_watch(container: Container, bot_token: str) -> tuple[AuditWatch, AuditChannelSender]:
    """Unusual activity in the audit trail, announced in the policy's [audit] channel with a signed link."""
    from bot.report.links import LinkConfigError, public_link, signer_from_env

    c = container
    try:
        signer = signer_from_env(c.settings.extra, c.clock)
    except LinkConfigError:  # reported by `rollback-bot check`; the messages go out without a link
        signer = None
    render = renderer(lambda path: public_link(c.settings.public_url, signer, path))
    watch = AuditWatch(c.store, c.policy.audit, c.clock, render)
    return watch, AuditChannelSender(outbox_client(bot_token, c.settings.slack_api_url), c.store)


def outbox_warnings(store: SqlStore) -> list[str]:
    """Slack messages stopped by a permanent error, for /readyz (the bot stays ready: alerts still work)."""
    cards = [f"Slack refused the {f.event} message of proposal #{f.proposal_id}: {f.error}; fix it, then "
             "restart the bot to resend" for f in store.outbox_failures()]
    stopped = store.notice_failures()
    notices = [f"Slack refused the unusual-activity messages for the audit channel {channel}: {error}; fix "
               "[audit] channel (or invite the bot there), then restart the bot to resend"
               for channel, error in dict(stopped).items()]
    posts = [f"Slack refused the {kind} message to {channel}: {error}"
             for kind, channel, error in store.stopped_posts()]
    return cards + notices + posts


def start_workers(container: Container, *, act: bool = True, send: bool = True) -> list[Loop | PgListener]:
    """Start the decider and executor threads (``act``) and the Slack sender's (``send``), and LISTEN on
    PostgreSQL. Stop with .stop(). The worker process and its Slack process each start their half."""
    c = container
    started: list[Loop | PgListener] = []
    if act and c.run_workers:
        for _ in range(deciders(c.engine.dialect.name)):
            started.append(Loop(DECIDE, c.decider.tick, c.timings.poll_s, c.signals).start())
        started.append(c.executor.start(c.timings.poll_s, c.signals))
    if send and c.slack_sender is not None:
        started.append(_slack_loop(c, c.slack_sender))
    if started and c.run_workers and c.engine.dialect.name == "postgresql":
        started.append(PgListener(c.engine.url.render_as_string(hide_password=False),
                                  [c.signals.wake_named]).start())
    return started


def deciders(dialect: str) -> int:
    """Decider threads: two on PostgreSQL, where half of a decision is waiting for the database's answers,
    so a second model is decided meanwhile (a storm's first critical alerts, one per model, were switched
    in 158-207 ms at the median instead of 240-310 ms, and at p99 in 340-620 instead of 838-988 ms, runs
    alternated; README, Benchmarks); one on SQLite, whose statements run in this process and leave no wait
    to fill."""
    return 2 if dialect == "postgresql" else 1


def _slack_loop(c: Container, sender: SlackSender) -> Loop:
    """The Slack sender's thread: card updates, thread messages, drill cards and the audit channel."""
    from bot.readiness_wiring import post_sender

    unusual_parts: tuple[AuditWatch, AuditChannelSender] | None = c.extras.get("audit_watch")
    posts = post_sender(c)  # drill cards: messages that belong to no proposal

    def send() -> bool:  # one sender across replicas: in order, and never two posts of one card at once
        with held(c.store, "slack:sender", c.owner, c.timings.lease_s) as fencing:
            if fencing is None:
                return False
            busy = sender.tick()
            if posts is not None:
                busy = posts.tick() or busy  # drill cards: messages that belong to no proposal
            if unusual_parts is not None:
                watch, audit_channel = unusual_parts  # the audit channel's messages (bot/core/unusual.py)
                scanned = watch.scan()
                busy = audit_channel.tick() or busy or scanned
            return busy

    return Loop(SLACK, send, c.timings.poll_s, c.signals, settle_s=SLACK_SETTLE_S).start()


def verifier(container: Container) -> Verifier:
    """The post-rollback check, reporting through the same notifier (the Slack outbox) as everything else."""
    c = container
    return Verifier(c.store, c.policy, c.service.targets, c.insight, c.clock, c.service.notifier)
