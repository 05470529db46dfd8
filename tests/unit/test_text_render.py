"""Blocks rendered as a person reads them in a terminal."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from devkit.text_render import mrkdwn_to_text, render_blocks, render_message


def test_mrkdwn_tokens_become_readable() -> None:
    assert mrkdwn_to_text("by <@U123>") == "by @U123"
    assert mrkdwn_to_text("by <@U123|alice>") == "by @alice"
    assert mrkdwn_to_text("<!subteam^S0ONCALL>") == "@S0ONCALL"
    assert mrkdwn_to_text("<!subteam^S0ONCALL|@oncall>") == "@oncall"
    assert mrkdwn_to_text("<#C1|alerts> <#C2>") == "#alerts #C2"
    assert mrkdwn_to_text("<!here> <!channel>") == "@here @channel"
    assert mrkdwn_to_text("<http://x.local/a?b=1|the graph>") == "the graph (http://x.local/a?b=1)"
    assert mrkdwn_to_text("<http://x.local/>") == "http://x.local/"
    assert mrkdwn_to_text("due <!date^1714565700^{date_short_pretty} {time}|2024-05-01 12:15 UTC>") == (
        "due 2024-05-01 12:15 UTC"
    )
    assert mrkdwn_to_text("a &lt;b&gt; &amp; c") == "a <b> & c"


def test_styles_are_dropped_but_identifiers_survive() -> None:
    assert mrkdwn_to_text("*Why:* _because_ ~no~") == "Why: because no"
    assert mrkdwn_to_text("error_rate and p_99_latency") == "error_rate and p_99_latency"
    assert mrkdwn_to_text("2*3*4") == "2*3*4"
    assert mrkdwn_to_text("*bold*", keep_styles=True) == "*bold*"


def test_layout_of_a_card() -> None:
    blocks = [
        HeaderBlock(text="✅ fraud-detector: rolled back"),
        SectionBlock(text=MarkdownTextObject(text="*fraud-detector* `7` → `6`\nsecond line")),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="small print"), PlainTextObject(text="more")]),
        ActionsBlock(
            elements=[
                ButtonElement(text="Approve", action_id="a", value="1", style="primary"),
                ButtonElement(text="Deny", action_id="d", value="1", style="danger"),
            ]
        ),
    ]
    out = render_blocks(blocks, width=40)
    assert out == (
        "✅ fraud-detector: rolled back\n"
        "==============================\n"
        "\n"
        "fraud-detector `7` → `6`\n"
        "second line\n"
        "\n" + "─" * 40 + "\n"
        "\n"
        "  small print  ·  more\n"
        "\n"
        "[ Approve ] [ Deny ]\n"
    )


def test_dicts_and_objects_render_the_same() -> None:
    blocks = [HeaderBlock(text="Title"), SectionBlock(text="body <@U1>")]
    assert render_blocks(blocks) == render_blocks([b.to_dict() for b in blocks])


def test_fields_side_by_side_when_short_one_per_line_when_long() -> None:
    short = {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Model*\nfraud"},
            {"type": "mrkdwn", "text": "*Version*\n7"},
        ],
    }
    out = render_blocks([short], width=40).splitlines()
    assert out[0].startswith("Model") and out[0].rstrip().endswith("Version")
    assert out[1].startswith("fraud") and out[1].rstrip().endswith("7")

    long = {
        "type": "section",
        "fields": [{"type": "plain_text", "text": "x" * 50}, {"type": "plain_text", "text": "y"}],
    }
    out = render_blocks([long], width=40).splitlines()
    assert out == ["x" * 50, "y"]


def test_long_paragraphs_wrap_and_keep_urls_whole() -> None:
    url = "http://example.local/" + "a" * 60
    out = render_blocks([SectionBlock(text="word " * 30 + f"<{url}|graph>")], width=40)
    assert all(len(line) <= 40 or url in line for line in out.splitlines())
    assert url in out


def test_section_accessory_and_unknown_blocks() -> None:
    block = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "pick"},
        "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "action_id": "o"},
    }
    assert render_blocks([block, {"type": "video"}]) == "pick\n[ Open ]\n\n[video block]\n"


def test_rich_text_from_a_person() -> None:
    block = {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "ping "},
                    {"type": "user", "user_id": "U1"},
                    {"type": "text", "text": " see "},
                    {"type": "link", "url": "http://x.local", "text": "this"},
                    {"type": "emoji", "name": "fire", "unicode": "1f525"},
                ],
            }
        ],
    }
    assert render_blocks([block]) == "ping @U1 see this (http://x.local)🔥\n"


def test_render_message_falls_back_to_text() -> None:
    assert render_message({"text": "hello <@U1>"}) == "hello @U1\n"
    assert render_message({"text": "x", "blocks": [{"type": "divider"}]}, width=3) == "───\n"
