"""`rollback-bot demo`: placeholder until the Slack loop lands."""

from __future__ import annotations


def run_demo(*, keep: bool = False) -> int:
    print("the offline demo needs the Slack integration, which is not built yet")
    return 1
