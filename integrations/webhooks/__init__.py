"""Webhooks: events signed per Standard Webhooks 1.0, delivered through the hub's outbox."""
