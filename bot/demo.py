"""`rollback-bot demo`, loaded lazily from the development kit.

The demo drives the real server with a local Slack stand-in, signed requests and a text renderer of the cards:
test tooling that stays out of the product (``devkit/``, not in the wheel or the container image). So the
runtime install answers the command with how to get the kit instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys

HOW_TO_GET_IT = (
    "rollback-bot demo needs the development kit (the `devkit` package), which the runtime install does not "
    "contain.\nRun it from a source checkout of rollback-bot: `./scripts/demo` (it puts the checkout on "
    "PYTHONPATH),\nor `PYTHONPATH=<checkout> rollback-bot demo` with the development lock installed."
)


def run_demo(*, keep: bool = False) -> int:
    try:
        demo = importlib.import_module("devkit.demo")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "devkit":
            raise
        print(HOW_TO_GET_IT, file=sys.stderr)
        return 2
    code: int = demo.run_demo(keep=keep)
    return code
