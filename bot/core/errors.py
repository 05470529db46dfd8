"""Domain errors. Each message says what was wrong and how to fix it."""

from __future__ import annotations


class RollbackError(Exception):
    """Base for every refusal the bot explains to a person."""


class UnknownModel(RollbackError):
    def __init__(self, model: str, known: list[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown model '{model}': no [models.{model}] table in the policy file (known models: {names})"
        )
        self.model = model


class UnknownVersion(RollbackError):
    pass


class NoRollbackTarget(RollbackError):
    pass


class Refused(RollbackError):
    """The policy forbids this now (frozen, cooldown, rollback already running, not authorised)."""


class IllegalTransition(RollbackError):
    def __init__(self, proposal_id: int, current: str, wanted: str) -> None:
        super().__init__(f"proposal #{proposal_id} is {current}; it cannot become {wanted}")
        self.proposal_id = proposal_id
        self.current = current
        self.wanted = wanted


class NotFound(RollbackError):
    pass


class TargetError(RollbackError):
    """A deployment target refused or failed; keeps the remote message for the audit and the card."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retryable = retryable
