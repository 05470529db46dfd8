"""Request and response schemas of the HTTP API, as pydantic models.

They are the single description of what each endpoint takes and gives: the handlers validate with them, and
``/openapi.json`` is generated from them (bot/web/openapi.py). Every bound here exists because some input
past it used to reach the database or the interpreter and come back as a 500: text longer than its column,
NUL characters and lone surrogates PostgreSQL refuses, metadata nested deep enough to exhaust the
recursion limit, NaN and Infinity that JSON cannot carry back, ``true`` read as the version ``"True"``,
ids past the integer column.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

MAX_ID = 2**31 - 1  # the id columns are INTEGER on PostgreSQL and SQLite alike
MAX_NAME = 200  # the model and version columns
MAX_ACTOR = 100  # deployed_by and source; the audit actor "api:<deployed_by>" must fit its 200-character column
METADATA_MAX_DEPTH = 8
METADATA_MAX_KEYS = 200  # keys in all objects of the metadata together
METADATA_MAX_TEXT = 10_000  # characters in one key or string value
METADATA_MAX_INT = 2**63 - 1

# No control characters (NUL included) in names: they cannot be typed, and PostgreSQL refuses NUL in text.
# No leading or trailing white space either: "7 " and "7" would be two versions that look alike.
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_surrogates(value: str) -> str:
    if _SURROGATE.search(value):
        raise ValueError("contains a lone UTF-16 surrogate, which is not a character")
    return value


Name = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN),
    AfterValidator(_no_surrogates),
]
ShortText = Annotated[
    StrictStr,
    StringConstraints(max_length=MAX_ACTOR, pattern=r"^[^\x00-\x1f\x7f]*$"),
    AfterValidator(_no_surrogates),
]


def _version(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string or a whole number (true, false, null, fractions and objects are "
                         "refused: 1.10 and 1.1 are not the same version)")
    if isinstance(value, int) and not 0 <= value <= METADATA_MAX_INT:
        raise ValueError(f"a whole-number version must lie from 0 to {METADATA_MAX_INT}")
    return str(value)


Version = Annotated[
    str,
    BeforeValidator(_version),
    StringConstraints(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN),
    AfterValidator(_no_surrogates),
    WithJsonSchema({
        "description": "The version: a string, or a whole number read as its decimal string.",
        "oneOf": [{"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": NAME_PATTERN},
                  {"type": "integer", "minimum": 0, "maximum": METADATA_MAX_INT}],
    }),
]


def check_json_value(value: Any, path: str = "metadata", depth: int = 0, budget: list[int] | None = None) -> None:
    """Refuse what a JSON column or a JSON answer cannot carry, and shapes that exhaust the interpreter."""
    budget = [METADATA_MAX_KEYS] if budget is None else budget
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {METADATA_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            budget[0] -= 1
            if budget[0] < 0:
                raise ValueError(f"more than {METADATA_MAX_KEYS} keys in all")
            _check_text(key, f"{path} key")
            check_json_value(item, f"{path}.{key[:40]}", depth + 1, budget)
    elif isinstance(value, list):
        if len(value) > METADATA_MAX_KEYS:
            raise ValueError(f"{path}: more than {METADATA_MAX_KEYS} items")
        for index, item in enumerate(value):
            check_json_value(item, f"{path}[{index}]", depth + 1, budget)
    elif isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > METADATA_MAX_INT:
            raise ValueError(f"{path}: whole numbers must lie within ±{METADATA_MAX_INT}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: NaN and Infinity are not JSON numbers")
        if abs(value) > METADATA_MAX_INT:
            raise ValueError(f"{path}: numbers must lie within ±{METADATA_MAX_INT}")
    else:  # pragma: no cover - JSON parsing produces nothing else
        raise ValueError(f"{path}: unsupported value")


def _check_text(value: str, path: str) -> None:
    if len(value) > METADATA_MAX_TEXT:
        raise ValueError(f"{path}: longer than {METADATA_MAX_TEXT} characters")
    if "\x00" in value:
        raise ValueError(f"{path}: contains a NUL character")
    _no_surrogates(value)


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    check_json_value(value)
    return value


NO_NUL_PATTERN = r"^[^\x00]*$"
# pydantic resolves "$ref"s it meets while generating; the document builder turns this marker into one.
METADATA_REF = {"x-schema-ref": "MetadataValue"}
METADATA_VALUE_SCHEMA: dict[str, Any] = {  # recursive: published as a component of /openapi.json
    "description": "Any JSON value but NaN and Infinity; strings without NUL.",
    "oneOf": [
        {"type": "string", "maxLength": METADATA_MAX_TEXT, "pattern": NO_NUL_PATTERN},
        {"type": "number", "minimum": -METADATA_MAX_INT, "maximum": METADATA_MAX_INT},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "maxItems": METADATA_MAX_KEYS, "items": METADATA_REF},
        {"type": "object", "maxProperties": METADATA_MAX_KEYS,
         "propertyNames": {"maxLength": METADATA_MAX_TEXT, "pattern": NO_NUL_PATTERN},
         "additionalProperties": METADATA_REF},
    ],
}
Metadata = Annotated[
    dict[str, Any],
    AfterValidator(_metadata),
    WithJsonSchema({
        "type": "object", "maxProperties": METADATA_MAX_KEYS,
        "propertyNames": {"maxLength": METADATA_MAX_TEXT, "pattern": NO_NUL_PATTERN},
        "additionalProperties": METADATA_REF,
        "description": f"Free-form JSON object kept with the deployment (commit, pipeline URL, image digest...): "
                       f"at most {METADATA_MAX_DEPTH} levels deep, {METADATA_MAX_KEYS} keys in all, strings of at "
                       f"most {METADATA_MAX_TEXT} characters without NUL, finite numbers only.",
    }),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=METADATA_MAX_TEXT)


# ---- requests ---------------------------------------------------------------------------------------------


OverrideReason = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=1000,
                      pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*\S[^\x00-\x08\x0b-\x1f\x7f]*$"),
    AfterValidator(_no_surrogates),
]


class OverrideIn(Strict):
    """Deploy a version the bot rolled back (and so blocked) anyway: audited and posted in the model's channel."""

    reason: OverrideReason = Field(description="Why this blocked version is deployed anyway (at most 1000 characters).")


class DeploymentIn(Strict):
    """``POST /deployments``: CI/CD reports that a version of a model now serves."""

    model: Name = Field(description="The model's name, as in the policy file ([models.NAME]).")
    version: Version
    deployed_by: ShortText | None = Field(default=None, description="Who or what deployed it (a CI job, a person).")
    source: ShortText | None = Field(default=None, description="The system that reports it (argo, github-actions...).")
    metadata: Metadata | None = None
    stable: StrictBool = Field(default=False, description="Mark it stable at once (onboarding an existing model).")
    override: OverrideIn | None = Field(
        default=None, description="Needed only for a version the bot rolled back: without it such a deployment "
                                  "is refused with 409, naming who rolled it back, when and why.")

    def version_text(self) -> str:
        return str(self.version).strip()


class AuditQuery(Strict):
    """``GET /api/audit`` query parameters."""

    model: Name | None = Field(default=None, description="Only this model's records.")
    since: Annotated[StrictStr, StringConstraints(max_length=40)] | None = Field(
        default=None, description="Only records this recent: a duration such as 90m, 12h, 7d (at most 3650d).")
    limit: Annotated[int, Field(ge=1, le=1000)] = Field(default=100, description="At most this many records.")


ProposalId = Annotated[int, Field(ge=1, le=MAX_ID, description="A proposal's number (#12 on its card).")]


# ---- responses --------------------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class BlockOut(BaseModel):
    """A version blocked because the bot rolled it back; ``unblocked_*`` are set once an approver lifted it."""

    version: str
    rolled_back_by: str = Field(description="Who rolled it back (the approver, or bot:policy for an automatic one).")
    rolled_back_at: str | None
    reason: str = Field(description="Why it was rolled back (the proposal's reason).")
    proposal_id: int | None = Field(description="The rollback's proposal (GET /api/proposals/{id}).")
    active: bool
    unblocked_by: str | None
    unblocked_at: str | None
    unblock_reason: str | None


class ErrorOut(BaseModel):
    """Every 4xx and 5xx answer of the JSON API."""

    error: str = Field(description="What was wrong and how to fix it.")
    field: str | None = Field(default=None, description="The request field at fault, as a dotted path.")
    errors: list[FieldError] | None = Field(default=None, description="Each field at fault, when several are.")
    blocked: BlockOut | None = Field(default=None, description="POST /deployments of a blocked version (409): "
                                                               "who rolled it back, when and why.")


class DeploymentOut(BaseModel):
    id: int
    version: str
    deployed_at: str | None
    deployed_by: str | None
    source: str | None
    stable_at: str | None
    rolled_back_at: str | None


class DeploymentCreated(BaseModel):
    model: str
    deployment: DeploymentOut


class ProposalOut(BaseModel):
    id: int
    model: str
    state: str
    kind: str
    from_version: str
    to_version: str
    target_note: str
    requested_by: str
    reason: str
    severity: str
    decision_reason: str
    required_approvals: int
    approvals: list[str]
    dry_run: bool
    created_at: str | None
    deadline_at: str | None
    escalated: bool
    decided_by: str | None
    decided_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    result: str | None
    error: str | None
    summary: dict[str, Any]
    verification: str | None
    undo_of: int | None
    action: str = Field("rollback", description="rollback, or abort_canary: the canary gets 0 % and the stable "
                                                 "version keeps serving")


class ModelStatusOut(BaseModel):
    model: str
    target: str
    current_version: str | None
    served_version: str | None
    last_stable_version: str | None
    frozen: bool
    frozen_until: str | None
    frozen_reason: str | None
    last_rollback_at: str | None
    open_proposal: ProposalOut | None
    deployments: list[DeploymentOut]
    blocked_versions: list[BlockOut] = Field(description="Versions the bot rolled back, refused by POST /deployments "
                                                         "until an approver unblocks them.")


class VersionReadinessOut(BaseModel):
    """The readiness gate folded into the deployability answer (the full report is ``/readiness``)."""

    ready: bool = Field(description="A rollback of this deployment would work (every readiness check passes).")
    failing: list[str] = Field(description="The names of the readiness checks that fail, in order.")
    rollback_to: str | None = Field(description="The version a rollback would return to once this version is "
                                                "deployed, if any.")


class VersionOut(BaseModel):
    """``GET /api/models/{model}/versions/{version}``: may CI deploy this version, and its history."""

    model: str
    version: str
    deployable: bool = Field(description="False while the version is blocked after a rollback by the bot. "
                                         "Only the block: readiness is `rollback_ready`.")
    rollback_ready: bool = Field(description="A rollback of this deployment would work now (the readiness gate).")
    reason: str = Field(description="Why (who rolled it back, when and why; or who unblocked it), then one "
                                    "sentence on readiness naming each failing check.")
    readiness: VersionReadinessOut
    current: bool = Field(description="The model's newest recorded deployment is this version.")
    blocked: BlockOut | None = Field(description="The active block, if any.")
    blocks: list[BlockOut] = Field(description="Every block of this version, newest first, lifted ones included.")
    deployments: list[DeploymentOut] = Field(description="Every deployment of this version, newest first.")


class AuditRecordOut(BaseModel):
    id: int
    at: str | None
    actor: str
    action: str
    model: str | None
    proposal_id: int | None
    from_version: str | None
    to_version: str | None
    reason: str | None
    inputs: dict[str, Any]
    prev_hash: str
    hash: str


class AuditListOut(BaseModel):
    count: int
    records: list[AuditRecordOut]


class AlertOutcomeOut(BaseModel):
    fingerprint: str | None
    model: str | None
    outcome: str
    reason: str


class IntakeOut(BaseModel):
    """What one alert payload did (only committed work is reported)."""

    status: Literal["accepted"]
    stored: int
    duplicates: int
    ignored: int
    refused: int
    resolved: int
    stale: int = Field(0, description="alerts naming a version that is not live: recorded, never acted on")
    proposals_created: list[int]
    proposals_updated: list[int]
    executed: list[int]
    alerts: list[AlertOutcomeOut]


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]


class ReadinessCheckOut(BaseModel):
    name: str = Field(description="policy, target, version, approvers, escalation, channel or metrics.")
    ok: bool
    detail: str = Field(description="What was found, or why this check fails.")


class ModelReadinessOut(BaseModel):
    """``GET /api/models/{model}/readiness``: would a rollback of this model work now?"""

    model: str
    ready: bool = Field(description="Every check passed (the answer is then 200; otherwise 503).")
    failing: list[str] = Field(description="The names of the checks that failed, in order.")
    rollback_to: str | None = Field(description="The version a rollback would return to now, if any.")
    checks: list[ReadinessCheckOut]


__all__ = [
    "MAX_ID",
    "AlertOutcomeOut",
    "AuditListOut",
    "AuditQuery",
    "AuditRecordOut",
    "BlockOut",
    "DeploymentCreated",
    "DeploymentIn",
    "DeploymentOut",
    "ErrorOut",
    "FieldError",
    "HealthOut",
    "IntakeOut",
    "ModelReadinessOut",
    "ModelStatusOut",
    "Name",
    "OverrideIn",
    "ProposalId",
    "ProposalOut",
    "ReadinessCheckOut",
    "ReadyOut",
    "VersionOut",
    "VersionReadinessOut",
    "check_json_value",
    "model_name",
    "version_name",
]


_NAME = TypeAdapter(Name)
_VERSION = TypeAdapter(Version)


def model_name(raw: str) -> str:
    """A model name taken from the URL path, or a 400 naming ``model``."""
    from bot.web.errors import ApiError, validation_error

    try:
        return str(_NAME.validate_python(raw))
    except ValidationError as exc:
        error = validation_error(exc, status=400, where="path parameter")
        raise ApiError(400, f"path parameter 'model': {error.errors[0]['message'] if error.errors else 'invalid'}",
                       field="model") from None


def version_name(raw: str) -> str:
    """A version taken from the URL path, or a 400 naming ``version``."""
    from bot.web.errors import ApiError, validation_error

    try:
        return str(_VERSION.validate_python(raw))
    except ValidationError as exc:
        error = validation_error(exc, status=400, where="path parameter")
        raise ApiError(400, f"path parameter 'version': {error.errors[0]['message'] if error.errors else 'invalid'}",
                       field="version") from None
