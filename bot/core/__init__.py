"""The domain: pure Python, no Slack, HTTP or SQL imports."""
