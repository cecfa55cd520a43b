"""Quiet hours in the channel's time zone, across midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.notify.quiet import quiet_until

NIGHT = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def utc(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def test_window_across_midnight() -> None:
    # 23:30 in Berlin in winter (UTC+1): held until 07:00 Berlin the next day.
    assert utc(quiet_until(ts("2026-01-15T22:30:00+00:00"), NIGHT)) == "2026-01-16T06:00:00+00:00"
    # 06:59 Berlin: still quiet, until 07:00 the same day.
    assert utc(quiet_until(ts("2026-01-16T05:59:00+00:00"), NIGHT)) == "2026-01-16T06:00:00+00:00"
    # 07:00 and noon Berlin: not quiet.
    assert quiet_until(ts("2026-01-16T06:00:00+00:00"), NIGHT) is None
    assert quiet_until(ts("2026-01-16T11:00:00+00:00"), NIGHT) is None
    # 22:00 Berlin is the first quiet minute.
    assert quiet_until(ts("2026-01-16T21:00:00+00:00"), NIGHT) is not None


def test_daylight_saving_night_is_an_hour_shorter() -> None:
    # Clocks go forward in Berlin on 2026-03-29: 07:00 that morning is 05:00 UTC, not 06:00.
    assert utc(quiet_until(ts("2026-03-28T22:00:00+00:00"), NIGHT)) == "2026-03-29T05:00:00+00:00"


def test_day_window_in_another_zone_and_empty_window() -> None:
    office = {"start": "09:00", "end": "17:00", "timezone": "America/New_York"}
    # Noon in New York in summer (UTC-4): quiet until 17:00 EDT = 21:00 UTC.
    assert utc(quiet_until(ts("2026-07-01T16:00:00+00:00"), office)) == "2026-07-01T21:00:00+00:00"
    assert quiet_until(ts("2026-07-01T22:00:00+00:00"), office) is None
    same = {"start": "08:00", "end": "08:00", "timezone": "UTC"}
    assert quiet_until(ts("2026-07-01T08:00:00+00:00"), same) is None
    assert quiet_until(ts("2026-07-01T08:00:00+00:00"), None) is None
