"""Deployment targets: one module per system, all speaking REST through adapters.targets.http.

``TARGET_FACTORIES`` maps the policy file's ``target = "..."`` to a factory; every product is a
``DeploymentTarget`` that also has ``validate(settings)`` and ``check_connection(model, settings)``
(see ``adapters.targets.common.CheckableTarget``).
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.targets.argo_rollouts import ArgoRolloutsTarget
from adapters.targets.kserve import KServeTarget
from adapters.targets.kubernetes import KubernetesTarget
from adapters.targets.launchdarkly import LaunchDarklyTarget
from adapters.targets.mlflow import MlflowTarget
from adapters.targets.unleash import UnleashTarget
from adapters.targets.webhook import WebhookTarget
from bot.core.ports import DeploymentTarget

TARGET_FACTORIES: dict[str, Callable[..., DeploymentTarget]] = {
    # "local": added where the database is wired in (it needs the store).
    "webhook": WebhookTarget,
    "mlflow": MlflowTarget,
    "kubernetes": KubernetesTarget,
    "argo-rollouts": ArgoRolloutsTarget,
    "kserve": KServeTarget,
    "unleash": UnleashTarget,
    "launchdarkly": LaunchDarklyTarget,
}

__all__ = ["TARGET_FACTORIES"]
