"""Render Block Kit blocks as terminal text, the way a person would read the card in Slack.

The offline demo and the tests use it to show a card without a Slack client, so it favours
what a reader sees (names, labels, dates as written) over Slack's markup.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot.slack.mrkdwn import unescape

_TOKEN = re.compile(r"<([^<>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")


def _token(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):  # <@U123> or <@U123|name>
        return f"@{label or target[1:]}"
    if target.startswith("#"):  # <#C123|general>
        return f"#{label or target[1:]}"
    if target.startswith("!"):
        if target.startswith("!subteam^"):
            return label if label.startswith("@") else f"@{label or target[len('!subteam^') :]}"
        if target.startswith("!date^"):
            return label or target.split("^")[1]
        return label or f"@{target[1:]}"  # <!here>, <!channel>
    if label:
        return f"{label} ({target})" if label != target else target
    return target


def mrkdwn_to_text(text: str, *, keep_styles: bool = False) -> str:
    """Turn Slack mrkdwn into plain text: mentions to ``@id``, links to ``label (url)``, dates to fallback."""
    out = _TOKEN.sub(_token, text)
    if not keep_styles:
        out = _BOLD.sub(r"\1", out)
        out = _ITALIC.sub(r"\1", out)
        out = _STRIKE.sub(r"\1", out)
    return unescape(out)


def display_width(text: str) -> int:
    """Columns a terminal uses for ``text``: wide characters (most emoji) take two, marks none."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in {"Mn", "Me", "Cf"}:
            continue
        width += 2 if unicodedata.east_asian_width(ch) in {"W", "F"} else 1
    return width


def _as_dict(block: Block | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(block, Block):
        return dict(block.to_dict())
    return dict(block)


def _text_of(obj: Any) -> str:
    """The readable text of a text object (plain_text or mrkdwn) or a bare string."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping):
        kind = obj.get("type")
        if kind == "mrkdwn":
            return mrkdwn_to_text(str(obj.get("text", "")))
        if kind in {"plain_text", None}:
            return str(obj.get("text", ""))
        if kind == "image":
            return f"[{obj.get('alt_text', 'image')}]"
    return str(obj)


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    lines: list[str] = []
    for raw in text.split("\n"):
        if not raw.strip():
            lines.append("")
            continue
        lines.extend(
            textwrap.wrap(
                raw,
                width=max(width, 10),
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [indent]
        )
    return lines


def _element(el: Mapping[str, Any]) -> str:
    kind = el.get("type")
    if kind == "button":
        return f"[ {_text_of(el.get('text'))} ]"
    if kind in {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "overflow",
    }:
        placeholder = _text_of(el.get("placeholder")) or "choose"
        return f"[ {placeholder} ▾ ]"
    if kind in {"datepicker", "timepicker", "datetimepicker"}:
        return "[ date ]"
    if kind == "image":
        return f"[{el.get('alt_text', 'image')}]"
    return _text_of(el)


def _fields(fields: Sequence[Any], width: int) -> list[str]:
    texts = [_text_of(f) for f in fields]
    col = (width - 3) // 2
    if all(len(line) <= col for t in texts for line in t.split("\n")):
        rows: list[str] = []
        for i in range(0, len(texts), 2):
            left = texts[i].split("\n")
            right = texts[i + 1].split("\n") if i + 1 < len(texts) else []
            for j in range(max(len(left), len(right))):
                lft = left[j] if j < len(left) else ""
                rgt = right[j] if j < len(right) else ""
                rows.append(f"{lft:<{col}}   {rgt}".rstrip())
        return rows
    out: list[str] = []
    for t in texts:
        out.extend(_wrap(t, width))
    return out


def _rich_text(elements: Iterable[Mapping[str, Any]]) -> str:
    parts: list[str] = []
    for el in elements:
        kind = el.get("type")
        if kind in {"rich_text_section", "rich_text_preformatted", "rich_text_quote"}:
            parts.append(_rich_text(el.get("elements", [])))
        elif kind == "rich_text_list":
            for item in el.get("elements", []):
                parts.append("• " + _rich_text(item.get("elements", [])) + "\n")
        elif kind == "text":
            parts.append(str(el.get("text", "")))
        elif kind == "link":
            url = str(el.get("url", ""))
            label = el.get("text")
            parts.append(f"{label} ({url})" if label else url)
        elif kind == "user":
            parts.append(f"@{el.get('user_id', '')}")
        elif kind == "usergroup":
            parts.append(f"@{el.get('usergroup_id', '')}")
        elif kind == "channel":
            parts.append(f"#{el.get('channel_id', '')}")
        elif kind == "emoji":
            code = el.get("unicode")
            if code:
                parts.append("".join(chr(int(x, 16)) for x in str(code).split("-")))
            else:
                parts.append(f":{el.get('name', '')}:")
    return "".join(parts)


def render_block(block: Block | Mapping[str, Any], width: int = 80) -> list[str]:
    """One block's lines (no trailing blank line)."""
    b = _as_dict(block)
    kind = b.get("type")
    if kind == "header":
        title = _text_of(b.get("text"))
        return [title, "=" * min(max(display_width(title), 3), width)]
    if kind == "divider":
        return ["─" * width]
    if kind == "section":
        lines: list[str] = []
        if b.get("text"):
            lines.extend(_wrap(_text_of(b["text"]), width))
        if b.get("fields"):
            if lines:
                lines.append("")
            lines.extend(_fields(b["fields"], width))
        accessory = b.get("accessory")
        if isinstance(accessory, Mapping):
            lines.append(_element(accessory))
        return lines
    if kind == "context":
        text = "  ·  ".join(
            _text_of(e) if e.get("type") != "image" else _element(e) for e in b.get("elements", [])
        )
        return _wrap(text, width - 2, indent="  ")
    if kind == "actions":
        return [" ".join(_element(e) for e in b.get("elements", []))]
    if kind == "image":
        title = _text_of(b.get("title"))
        return [f"[image: {title or b.get('alt_text', '')}]"]
    if kind == "rich_text":
        return _wrap(_rich_text(b.get("elements", [])).rstrip("\n"), width)
    if kind == "markdown":
        return _wrap(str(b.get("text", "")), width)
    if kind == "input":
        return [f"{_text_of(b.get('label'))}: {_element(b.get('element', {}))}"]
    return [f"[{kind} block]"]


def render_blocks(blocks: Sequence[Block | Mapping[str, Any]], width: int = 80) -> str:
    """All blocks as paragraphs separated by a blank line, ready to print."""
    paragraphs = ["\n".join(render_block(b, width)) for b in blocks]
    return "\n\n".join(p for p in paragraphs if p.strip()) + "\n"


def render_message(message: Mapping[str, Any], width: int = 80) -> str:
    """A stored chat message: its blocks when it has them, else its text."""
    blocks = message.get("blocks")
    if blocks:
        return render_blocks(blocks, width)
    return "\n".join(_wrap(mrkdwn_to_text(str(message.get("text", ""))), width)) + "\n"
