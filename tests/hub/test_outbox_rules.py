"""Outbox retry timing: exponential backoff with jitter, capped; Retry-After wins."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from config.loader import OutboxSettings
from hub.bus import EventBus
from hub.outbox import Outbox
from integrations.webhooks.sender import retry_after


def outbox(jitter: float) -> Outbox:
    settings = OutboxSettings(backoff_initial_s=5.0, backoff_max_s=3600.0)
    return Outbox(None, settings, EventBus(), rng=lambda: jitter)  # type: ignore[arg-type]


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    low, high = outbox(0.0), outbox(1.0)
    assert [high.backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert [low.backoff(n) for n in (1, 2, 3, 4)] == [2.5, 5.0, 10.0, 20.0]
    assert high.backoff(30) == 3600.0 and low.backoff(30) == 1800.0
    # The receiver's Retry-After is taken as it is, jitter or not.
    assert low.backoff(3, retry_after=42.0) == 42.0 == high.backoff(9, retry_after=42.0)


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 12, 4, 15, 0, tzinfo=UTC).timestamp()
    assert retry_after({"Retry-After": "120"}, now) == 120.0
    later = format_datetime(datetime(2026, 12, 4, 15, 1, 30, tzinfo=UTC), usegmt=True)
    assert retry_after({"Retry-After": later}, now) == 90.0
    past = format_datetime(datetime(2026, 12, 4, 14, 0, tzinfo=UTC), usegmt=True)
    assert retry_after({"Retry-After": past}, now) == 0.0
    assert retry_after({"Retry-After": "soon"}, now) is None
    assert retry_after({}, now) is None
