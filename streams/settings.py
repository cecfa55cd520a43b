"""Thresholds and tolerances of the stream pipelines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Tunables of build_pipelines; the defaults suit a typical farm."""

    # status$: at most one update per interval per printer (0.5 s = 2 Hz).
    status_interval_s: float = 0.5
    # status$: temperature moves smaller than this are sensor jitter, not a change.
    temperature_jitter_c: float = 0.5
    # notification$: a tray whose remain % drops below this is low ...
    filament_low_pct: int = 10
    # ... and is re-armed once it is back at threshold + margin (a refill or a new spool).
    filament_rearm_margin_pct: int = 2
    # notification$: an AMS unit whose humidity % rises above this is too damp ...
    humidity_high_pct: int = 40
    # ... and is re-armed once it is back at threshold - margin.
    humidity_rearm_margin_pct: int = 2
    # lifecycle$: a print that vanishes without a final state counts as finished from here.
    complete_pct: float = 99.0
    # lifecycle$: two started_at stamps of one print may differ this much (drivers derive it).
    start_tolerance_s: float = 60.0
    # lifecycle$: progress falling by more than this means the same file was started again.
    restart_drop_pct: float = 5.0
