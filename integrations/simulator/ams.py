"""Simulated filament: AMS units, their trays and the external spool."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

EXTERNAL_SLOT = 254  # Bambu's `tray_now` for the external spool ("vt_tray").
NO_SLOT = 255  # Bambu's `tray_now` when nothing is loaded.
SPOOL_GRAMS = 1000.0

# material -> (Bambu tray_info_idx, nozzle min °C, nozzle max °C, bed °C)
MATERIALS: dict[str, tuple[str, int, int, int]] = {
    "PLA": ("GFA00", 190, 230, 55),
    "PETG": ("GFG00", 220, 260, 70),
    "ABS": ("GFB00", 240, 280, 90),
    "ASA": ("GFB01", 240, 280, 90),
    "TPU": ("GFU01", 200, 250, 35),
    "PLA-CF": ("GFA50", 210, 240, 55),
}
_PALETTE = ("FF0000FF", "00AE42FF", "0A2989FF", "F4EE2AFF", "FFFFFFFF", "000000FF", "FF6A13FF")
_STOCK = ("PLA", "PLA", "PETG", "PLA")


@dataclass(slots=True)
class Tray:
    """One filament slot; `grams` left of a `capacity` gram spool, or empty."""

    slot: int  # global slot id: ams_id * 4 + tray_id, or EXTERNAL_SLOT
    material: str = "PLA"
    color: str = "FFFFFFFF"
    capacity: float = SPOOL_GRAMS
    grams: float = SPOOL_GRAMS
    empty: bool = False
    uuid: str = ""

    @property
    def remain(self) -> int:
        """Percent of the spool left, as Bambu reports `remain` (0 when empty)."""
        if self.empty or self.capacity <= 0:
            return 0
        return max(0, min(100, int(self.grams * 100.0 / self.capacity + 0.5)))

    @property
    def has_filament(self) -> bool:
        """True when the tray holds a spool with filament on it."""
        return not self.empty and self.grams > 0

    def consume(self, grams: float) -> float:
        """Take up to `grams` off the spool; return what could not be taken (the shortfall)."""
        if not self.has_filament:
            return grams
        taken = min(self.grams, grams)
        self.grams -= taken
        return grams - taken


@dataclass(slots=True)
class AmsUnit:
    """An AMS with four trays, humidity (1-5 index and %) and temperature."""

    unit: int
    trays: list[Tray] = field(default_factory=list)
    humidity: int = 4
    humidity_raw: int = 22
    temperature: float = 24.5


def stock_tray(slot: int, seed: str) -> Tray:
    """A deterministic, plausible spool for `slot` (material, colour and fill vary by seed)."""
    digest = hashlib.sha256(f"{seed}:{slot}".encode()).digest()
    material = _STOCK[slot % len(_STOCK)]
    color = _PALETTE[digest[0] % len(_PALETTE)]
    fill = 0.35 + (digest[1] / 255.0) * 0.65
    return Tray(
        slot=slot,
        material=material,
        color=color,
        grams=round(SPOOL_GRAMS * fill, 1),
        uuid=digest[2:18].hex().upper(),
    )


def stock_ams(units: int, seed: str) -> list[AmsUnit]:
    """`units` AMS units (at most four) with four stocked trays each."""
    if not 0 <= units <= 4:
        raise ValueError(f"a printer takes 0 to 4 AMS units, not {units}")
    return [
        AmsUnit(
            unit=u,
            trays=[stock_tray(u * 4 + t, seed) for t in range(4)],
            humidity=2 + (u % 3),
            humidity_raw=18 + 7 * u,
            temperature=24.0 + u * 0.5,
        )
        for u in range(units)
    ]
