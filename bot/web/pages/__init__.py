"""Read-only incident pages: server-rendered Jinja2 templates, no JavaScript, opened by signed link or token."""
