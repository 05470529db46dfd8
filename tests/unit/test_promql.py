"""PromQL building: hostile alert label values must stay inside their string literal."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.metrics.promql import escape_label_value, expr_from_generator_url, quote, selector

# An unescaped quote is one preceded by an even number of backslashes.
UNESCAPED_QUOTE = re.compile(r'(?<!\\)(?:\\\\)*"')


def unquote(literal: str) -> str:
    """Go/PromQL double-quoted string semantics for the escapes we emit (a JSON subset)."""
    value = json.loads(literal, strict=False)
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("fraud-detector", "fraud-detector"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("line1\nline2", "line1\\nline2"),
        ('\\"', '\\\\\\"'),
        ("tab\there\r", "tab\\there\\r"),
        ("ünïcode ✓", "ünïcode ✓"),
    ],
)
def test_escape_label_value(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped
    assert unquote(quote(raw)) == raw


@pytest.mark.parametrize(
    "hostile",
    ['"} or vector(1) or {"', '"}) or vector(1) #', '\\"} or vector(1)', 'x"\n} or vector(1) or {a="'],
)
def test_injection_attempts_stay_one_label_value(hostile: str) -> None:
    built = selector("model_errors_total", {"model": hostile})
    inner = built[len('model_errors_total{model='):-1]
    # exactly one literal: opening and closing quote are the only unescaped ones
    assert [m.end() - 1 for m in UNESCAPED_QUOTE.finditer(inner)] == [0, len(inner) - 1]
    assert unquote(inner) == hostile
    assert "\n" not in built


@given(st.text())
def test_any_text_round_trips_inside_one_literal(value: str) -> None:
    literal = quote(value)
    assert unquote(literal) == value
    assert len(UNESCAPED_QUOTE.findall(literal)) == 2


def test_selector_shapes() -> None:
    assert selector("up", {}) == "up"
    assert selector("model_requests_total", {"model": "ranker", "version": "7"}) == (
        'model_requests_total{model="ranker",version="7"}')
    assert selector("", {"model": "x"}) == '{model="x"}'


@pytest.mark.parametrize(
    ("metric", "labels"),
    [("up or vector(1)", {}), ("1up", {}), ("up", {"model=\"x\"} or vector(1) #": "x"}),
     ("up", {"": "x"}), ("", {})],
)
def test_selector_rejects_names_that_cannot_be_quoted(metric: str, labels: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"invalid|needs"):
        selector(metric, labels)


def test_expr_from_a_real_alertmanager_generator_url() -> None:
    url = (
        "http://127.0.0.1:19090/graph?g0.expr=sum+by+%28model%2C+version%29+%28rate%28model_prediction_"
        "errors_total%5B5s%5D%29%29+%2F+sum+by+%28model%2C+version%29+%28rate%28model_predictions_total"
        "%5B5s%5D%29%29+%3E+0.1&g0.tab=1"
    )
    assert expr_from_generator_url(url) == (
        "sum by (model, version) (rate(model_prediction_errors_total[5s])) / "
        "sum by (model, version) (rate(model_predictions_total[5s])) > 0.1"
    )


@pytest.mark.parametrize("url", ["", "http://grafana.example/d/abc?orgId=1", "not a url", "http://[::1"])
def test_expr_from_generator_url_without_an_expression(url: str) -> None:
    assert expr_from_generator_url(url) is None


def test_expr_keeps_quotes_and_plus_signs() -> None:
    url = "http://p/graph?g0.expr=up%7Bmodel%3D%22a%2Bb%22%7D+%3D%3D+0&g0.tab=0"
    assert expr_from_generator_url(url) == 'up{model="a+b"} == 0'
