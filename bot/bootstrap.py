"""The composition root: config, store, adapters, scheduler and Slack are wired here and nowhere else.

Tests build the same graph through `build()` with fakes passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from adapters.targets import TARGET_FACTORIES
from adapters.targets import local as local_target
from adapters.targets.local import LocalTarget
from bot.config import Settings, reveal
from bot.core.clock import Clock, SystemClock
from bot.core.metrics import MetricsSource
from bot.core.policy import Policy
from bot.core.ports import ApproverDirectory, DeploymentTarget, Notifier
from bot.core.service import RollbackService
from bot.core.verification import Verifier
from bot.policy_file import PolicyFileError, TargetValidator, load_policy
from bot.store.db import make_engine
from bot.store.repository import SqlStore

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
        validate = getattr(target, "validate", None)
        if validate is not None:
            validators[name] = validate
    return validators


def target_names() -> tuple[str, ...]:
    """Every target the policy file may name: `local` plus the registry in adapters/targets."""
    return ("local", *TARGET_FACTORIES)


def read_policy(path: str, credentials: Mapping[str, str] | None = None) -> Policy:
    loaded = load_policy(path, target_validators(credentials), target_names())
    if loaded.policy is None:
        raise PolicyFileError(loaded.problems)
    return loaded.policy


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: SqlStore
    policy: Policy
    service: RollbackService
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
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
) -> Container:
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url)
    store = SqlStore(engine, clock)
    credentials = settings.credentials()
    policy = policy or read_policy(settings.policy_path, credentials)
    all_targets: dict[str, DeploymentTarget] = {"local": LocalTarget(store)}
    all_targets.update(remote_targets(credentials) if targets is None else targets)
    service = RollbackService(store, policy, all_targets, clock, notifier=notifier, directory=directory)
    container = Container(settings, engine, store, policy, service, clock)
    if metrics is None and settings.prometheus_url:
        from adapters.metrics.prometheus import PrometheusSource

        metrics = PrometheusSource(settings.prometheus_url, token=reveal(settings.prometheus_token))
    if metrics is not None:
        from bot.insight import MetricInsight, summary_hook

        insight = MetricInsight(metrics, clock)
        service.summarise = summary_hook(insight)
        service.verification_enabled = True
        container.extras["insight"] = insight
    return container


def verifier(container: Container) -> Verifier:
    """The post-rollback check, reporting through whatever notifier the service has by now (Slack)."""
    c = container
    return Verifier(c.store, c.policy, c.service.targets, c.extras.get("insight"), c.clock, c.service.notifier)
