"""Quiet hours: a daily local-time window, in the channel's time zone, in which nothing is sent."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: `HH:MM`, 24-hour.
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

#: Every IANA time zone name, from the pinned `tzdata` package (the same list on every machine,
#: so the API's published enum does not depend on the host's zoneinfo files).
ZONES: tuple[str, ...] = tuple(
    sorted(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
)


def zone(name: str) -> ZoneInfo | None:
    """The IANA time zone `name`, or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: float, window: dict[str, str] | None) -> float | None:
    """When the quiet hours around `now` end (Unix seconds), or None when `now` is not in them.

    The window runs from `start` to `end` local time each day and may span midnight
    (22:00-07:00); start == end means no quiet hours. Local times are those of `timezone`, so
    the window follows daylight-saving changes."""
    if not window:
        return None
    tz = zone(window["timezone"])
    if tz is None:
        return None
    start, end = _clock(window["start"]), _clock(window["end"])
    if start == end:
        return None
    local = datetime.fromtimestamp(now, tz)
    clock = local.time().replace(second=0, microsecond=0)
    if start < end:
        inside = start <= clock < end
    else:
        inside = clock >= start or clock < end
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tz).timestamp()
