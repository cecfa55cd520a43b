"""Apprise URLs: checked when saved, shown with their secrets masked, and sent to."""

from __future__ import annotations

from dataclasses import dataclass

import apprise

#: Severity of a notification → apprise's notification type (icons, colours per service).
NOTIFY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True, slots=True)
class Described:
    """What people may see of a channel URL: the service's name and the URL with secrets masked."""

    service: str
    masked: str


def describe(url: str) -> Described | None:
    """The service and masked URL, or None when apprise does not understand `url`."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return None
    name = getattr(plugin, "service_name", None) or str(getattr(plugin, "protocol", "")) or "?"
    return Described(str(name), str(plugin.url(privacy=True)))


async def send(url: str, title: str, body: str, severity: str) -> tuple[bool, str | None]:
    """Deliver one notification; (delivered, what went wrong)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return False, "apprise does not understand the channel URL"
    result = await sender.async_notify(
        title=title, body=body, notify_type=NOTIFY_TYPES.get(severity, apprise.NotifyType.INFO)
    )
    if result:
        return True, None
    return False, _problems(result) or "the service did not accept the notification"


def _problems(result: object) -> str | None:
    """The warnings and errors apprise logged while sending (its secrets are already masked)."""
    logs = getattr(result, "logs", None)
    if not callable(logs):
        return None
    lines: list[str] = []
    for entry in logs():
        level = str(getattr(entry, "level", ""))
        message = str(getattr(entry, "message", entry))
        if level in ("WARNING", "ERROR", "CRITICAL") and message not in lines:
            lines.append(message)
    return "; ".join(lines)[:500] or None
