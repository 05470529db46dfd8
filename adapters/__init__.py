"""Adapters: the outside world behind the Protocols in bot.core.ports."""
