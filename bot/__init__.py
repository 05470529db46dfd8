"""rollback-bot: a safety net under every ML model deployment."""

__version__ = "0.1.0"
