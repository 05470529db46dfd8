"""Tools for trying and testing rollback-bot without Slack: a local stand-in for Slack's Web API, requests signed
as Slack signs them, a text renderer of Block Kit, a background test server and the offline demo.

It lives beside the product, not in it: nothing under ``bot/`` or ``adapters/`` imports it (a unit test checks),
and the runtime install (the wheel, the container image) does not contain it. A source checkout has it.
"""
