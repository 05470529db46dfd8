"""The post-incident report's outputs: Markdown, JSON, Slack posting, signed page links and metrics."""
