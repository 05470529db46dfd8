"""Adapters: one module per outside system (alert sources, deployment targets, metric sources)."""
