"""Notification channels: apprise URLs fed by the hub's notifications through the outbox."""
