"""Just enough YAML for a kubeconfig: block mappings, block sequences, plain and quoted scalars.

Why not PyYAML: it is not a dependency of the bot, and a kubeconfig uses a tiny subset. JSON (also YAML)
is accepted as is. Anchors, multi-line scalars and flow collections other than ``{}``/``[]`` are not.
"""

from __future__ import annotations

import json
from typing import Any


class YamlError(ValueError):
    pass


def _scalar(raw: str) -> Any:
    text = raw.strip()
    if text in ("", "~", "null"):
        return None
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if text[0] in "\"'":
        quote = text[0]
        if len(text) < 2 or text[-1] != quote:
            raise YamlError(f"unterminated quoted scalar: {text[:40]}")
        inner = text[1:-1]
        return json.loads(text) if quote == '"' else inner.replace("''", "'")
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    return text


def _strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_key(text: str) -> tuple[str, str] | None:
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ":" and (i + 1 == len(text) or text[i + 1] == " "):
            return str(_scalar(text[:i])), text[i + 1 :].strip()
    return None


def loads(source: str) -> Any:
    if source.lstrip().startswith("{"):
        return json.loads(source)
    lines: list[tuple[int, str]] = []
    for raw in source.splitlines():
        if raw.strip() in ("---", "...") or not raw.strip():
            continue
        line = _strip_comment(raw)
        if line.strip():
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    value, pos = _block(lines, 0, lines[0][0] if lines else 0)
    if pos != len(lines):
        raise YamlError(f"unexpected indentation near: {lines[pos][1][:40]}")
    return value


def _block(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[Any, int]:
    if pos >= len(lines):
        return None, pos
    if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
        return _sequence(lines, pos, indent)
    return _mapping(lines, pos, indent)


def _mapping(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("-"):
        pair = _split_key(lines[pos][1])
        if pair is None:
            raise YamlError(f"expected 'key: value' near: {lines[pos][1][:40]}")
        key, rest = pair
        pos += 1
        if rest:
            result[key] = _scalar(rest)
        elif pos < len(lines) and (
            lines[pos][0] > indent or (lines[pos][0] == indent and lines[pos][1].startswith("-"))
        ):
            result[key], pos = _block(lines, pos, lines[pos][0])
        else:
            result[key] = None
    return result, pos


def _sequence(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("-"):
        rest = lines[pos][1][1:].strip()
        if not rest:
            pos += 1
            item, pos = _block(lines, pos, lines[pos][0]) if pos < len(lines) else (None, pos)
            items.append(item)
            continue
        if _split_key(rest) is None:
            items.append(_scalar(rest))
            pos += 1
            continue
        # "- key: value" opens a mapping whose keys sit two columns to the right of the dash
        inner = indent + (len(lines[pos][1]) - len(rest))
        lines[pos] = (inner, rest)
        item, pos = _mapping(lines, pos, inner)
        items.append(item)
    return items, pos
