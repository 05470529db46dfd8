"""The Slack surface: proposal cards, the /rollback parser, and local stand-ins used by tests and the demo."""
