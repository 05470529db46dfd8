"""Adapters: the edges between the domain and the outside world (alert senders, targets, Slack)."""
