"""Normalized, protocol-independent printer state shared by every layer."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class PrintState(StrEnum):
    """What a printer is doing, whatever protocol it speaks."""

    IDLE = "idle"
    PREPARING = "preparing"
    PRINTING = "printing"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ERROR = "error"
    OFFLINE = "offline"


ACTIVE_STATES = frozenset({PrintState.PREPARING, PrintState.PRINTING, PrintState.PAUSED})


class Connection(StrEnum):
    """State of the hub's link to a printer."""

    CONNECTING = "connecting"
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    AUTH_FAILED = "auth_failed"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Temperatures:
    """Measured and target temperatures in degrees Celsius."""

    nozzle: float | None = None
    nozzle_target: float | None = None
    bed: float | None = None
    bed_target: float | None = None
    chamber: float | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """The print a printer is running or last ran."""

    file: str
    progress: float = 0.0
    layer: int | None = None
    total_layers: int | None = None
    remaining_s: int | None = None
    started_at: float | None = None
    # A protocol-provided identifier of this print (task id, job id), when there is one.
    key: str | None = None
    # Filament: the file's whole-print estimate (grams, or millimetres where the printer gives
    # only a length) and what the printer counted as extruded so far (Moonraker).
    filament_g: float | None = None
    filament_mm: float | None = None
    filament_used_mm: float | None = None


@dataclass(frozen=True, slots=True)
class EndedJob:
    """A print the printer says has ended, learned after the fact (e.g. from its job history)."""

    job: Job
    # finished | failed | cancelled | unknown (the printer kept no verdict)
    outcome: str
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class AmsTray:
    """One filament slot of an AMS unit (or the external spool)."""

    slot: int
    material: str | None = None
    color: str | None = None
    remain: int | None = None
    empty: bool = False
    # The spool's RFID identity where the printer reads one (Bambu `tray_uuid`).
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class AmsUnit:
    """An automatic material system unit with up to four trays."""

    unit: int
    # Relative humidity in percent (None when the printer reports only a coarse index).
    humidity: int | None = None
    temperature: float | None = None
    trays: tuple[AmsTray, ...] = ()


@dataclass(frozen=True, slots=True)
class HmsError:
    """A printer health error, e.g. Bambu HMS `HMS_0300_0100_0001_0007`."""

    code: str
    text: str = ""
    severity: str = "error"


@dataclass(frozen=True, slots=True)
class PrinterState:
    """One snapshot of a printer's live state as a driver reports it."""

    printer_id: str
    online: bool = False
    state: PrintState = PrintState.OFFLINE
    job: Job | None = None
    temps: Temperatures = field(default_factory=Temperatures)
    fans: dict[str, int] = field(default_factory=dict)
    speed_level: int | None = None
    ams: tuple[AmsUnit, ...] = ()
    active_tray: int | None = None
    errors: tuple[HmsError, ...] = ()
    wifi_signal: int | None = None
    light: bool | None = None
    updated_at: float = field(default_factory=time.time)
    # Prints that ended while nobody watched, as the printer reports them once after a
    # reconnect (oldest first); for the print tracker, never part of the shown status.
    ended: tuple[EndedJob, ...] = ()
    # The hub's link to the printer when this snapshot was taken (the printer manager stamps
    # it on every report), so a link change is a state change like any other. A driver's
    # report is online by default; `offline_state` is not.
    connection: Connection = Connection.ONLINE
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form of this snapshot."""
        data: dict[str, Any] = plain(self)
        data["state"] = self.state.value
        del data["ended"]
        return data


# Enum members copy to themselves: passed through like scalars, without a deepcopy per status.
_SCALARS = frozenset({str, int, float, bool, type(None), PrintState, Connection})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """What `dataclasses.asdict` makes of a dataclass (dicts, with tuples, lists and dicts inside
    rebuilt and anything else deep-copied), several times faster: it runs for every status
    update, so each class's field names are looked up once, not on every call."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return kind(plain(item) for item in value)
    if kind is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, dict)):
        return _plain_container(value)
    return copy.deepcopy(value)


def _plain_container(value: Any) -> Any:
    # Subclasses, as asdict treats them (named tuples by position, dicts and lists by type).
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[plain(item) for item in value])
    if isinstance(value, dict):
        return type(value)((plain(k), plain(v)) for k, v in value.items())
    return type(value)(plain(item) for item in value)


def offline_state(printer_id: str) -> PrinterState:
    """The state of a printer the hub has no live link to."""
    return PrinterState(
        printer_id=printer_id,
        online=False,
        state=PrintState.OFFLINE,
        connection=Connection.OFFLINE,
    )


# Timestamps ---------------------------------------------------------------------------------
# The API's one form of time, in REST bodies and /ws messages alike: RFC 3339 in UTC with
# milliseconds, e.g. "2026-12-04T14:23:54.123Z". Internally (database, streams) time stays Unix
# seconds; these two helpers are the only place the two forms meet.


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds as an RFC 3339 UTC string with milliseconds (`...Z`); None stays None."""
    if ts is None:
        return None
    millis = round(ts * 1000)
    seconds, ms = divmod(millis, 1000)
    t = time.gmtime(seconds)
    # The year always has four digits (strftime's %Y drops the zeros before year 1000).
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms:03d}Z"
    )


_LEAP_SECOND = re.compile(r"^(.+[T ][0-9]{2}:[0-9]{2}:)60(.*)$")


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 timestamp (offset or `Z`, either case; a bare date means its UTC midnight;
    a leap second `:60` is the instant after `:59`) as Unix seconds; ValueError when it is not
    one."""
    raw = text.strip().upper()
    leap = _LEAP_SECOND.match(raw)
    if leap is not None:
        raw = f"{leap[1]}59{leap[2]}"
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        if "T" in raw or " " in raw:
            raise ValueError(f"timestamp {text!r} has no UTC offset")
        value = value.replace(tzinfo=UTC)
    return value.timestamp() + (1.0 if leap is not None else 0.0)
