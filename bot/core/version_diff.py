"""What differs between the rolled-back version and the one restored: leads for the root cause, stated as
differences, never as guesses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DiffRow:
    """One key of one kind (metadata, param, metric, tag) with both sides' values.

    ``score`` orders the rows by how much they differ: the relative change for two numbers (0 … 1), 1.0 for
    a key on one side only or two different texts, 0.0 for equal values.
    """

    kind: str
    key: str
    bad: Any
    restored: Any
    score: float

    @property
    def differs(self) -> bool:
        return self.score > 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def difference(bad: Any, restored: Any) -> float:
    if bad is None or restored is None:
        return 0.0 if bad is restored else 1.0
    a, b = _number(bad), _number(restored)
    if a is not None and b is not None:
        if math.isnan(a) or math.isnan(b):
            return 0.0 if math.isnan(a) and math.isnan(b) else 1.0
        scale = max(abs(a), abs(b))
        return 0.0 if scale == 0 or a == b else min(1.0, abs(a - b) / scale)
    return 0.0 if bad == restored else 1.0


def _rows(kind: str, bad: Mapping[str, Any], restored: Mapping[str, Any]) -> list[DiffRow]:
    return [DiffRow(kind, key, bad.get(key), restored.get(key), difference(bad.get(key), restored.get(key)))
            for key in sorted(set(bad) | set(restored))]


def ordered(rows: list[DiffRow]) -> list[DiffRow]:
    """Most different first; equal rows last; then by kind and key so the order is stable."""
    return sorted(rows, key=lambda r: (-r.score, r.kind, r.key))


def side_by_side(bad: Mapping[str, Any], restored: Mapping[str, Any]) -> list[DiffRow]:
    """Every deployment metadata key CI sent for either version (commit, image, data snapshot, …)."""
    return ordered(_rows("metadata", bad, restored))


def diff_runs(bad: Mapping[str, Any], restored: Mapping[str, Any]) -> list[DiffRow]:
    """Parameters, metrics and tags of the two versions' runs; only the keys that differ."""
    rows: list[DiffRow] = []
    for kind, field in (("param", "params"), ("metric", "metrics"), ("tag", "tags")):
        left = bad.get(field) or {}
        right = restored.get(field) or {}
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            rows += [r for r in _rows(kind, left, right) if r.differs]
    return ordered(rows)
