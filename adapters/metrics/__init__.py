"""Metric backends implementing bot.core.metrics.MetricsSource."""
