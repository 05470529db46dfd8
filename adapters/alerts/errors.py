"""The one error every alert parser raises, so intake can answer 400 with a precise reason."""

from __future__ import annotations


class PayloadError(ValueError):
    """A malformed alert body: ``field`` is the JSON path (``alerts[0].labels``), ``problem`` what is wrong.

    ``str(error)`` is what a sender's operator reads in the 400 answer, so it names both.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field or "body"
        self.problem = problem
        super().__init__(f"{self.field}: {problem}")


class MappingError(ValueError):
    """A bad ``[sources.generic]`` table; ``problems`` lists every mistake so ``check`` can print them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))
