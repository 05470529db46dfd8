"""Signed Slack requests for tests (the helpers live in devkit.signing: the demo presses buttons too)."""

from devkit.signing import (
    FORM,
    JSON,
    PostResult,
    SignedRequest,
    block_actions_payload,
    event_callback_body,
    find_button,
    payload_body,
    post,
    press_button_payload,
    sign,
    signature,
    signed_headers,
    slash_command_body,
    view_submission_payload,
)

__all__ = [
    "FORM",
    "JSON",
    "PostResult",
    "SignedRequest",
    "block_actions_payload",
    "event_callback_body",
    "find_button",
    "payload_body",
    "post",
    "press_button_payload",
    "sign",
    "signature",
    "signed_headers",
    "slash_command_body",
    "view_submission_payload",
]
