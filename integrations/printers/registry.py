"""Printer drivers by protocol: the `kind: printer` plug-ins of integrations/loader.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations import loader
from integrations.loader import PRINTER, Catalog, Manifest, Root
from integrations.printers.base import PrinterDriver

log = logging.getLogger(__name__)


class DriverUnavailable(LookupError):
    """No usable driver for a protocol (unknown, or its code failed to import)."""


@dataclass(frozen=True, slots=True)
class DriverManifest:
    """What a driver declares about itself, read before any of its code runs."""

    name: str
    protocol: str
    version: str
    default_port: int
    capabilities: frozenset[str]
    config_schema: dict[str, Any]
    module: str
    class_name: str
    plugin: Manifest
    required_fields: tuple[str, ...] = ()
    print_files: frozenset[str] = frozenset({"gcode"})  # the file kinds a start takes
    tray_mapping: bool = False  # a start maps each filament of the file to a tray

    @classmethod
    def of(cls, manifest: Manifest) -> DriverManifest:
        """The printer-specific view of a `kind: printer` plug-in manifest."""
        return cls(
            name=manifest.name,
            protocol=manifest.extra["protocol"],
            version=manifest.version,
            default_port=manifest.extra["default_port"],
            capabilities=frozenset(manifest.extra["capabilities"]),
            config_schema=manifest.config_schema or {},
            module=manifest.module,
            class_name=manifest.attr,
            plugin=manifest,
            required_fields=tuple(manifest.extra.get("required_fields", ())),
            print_files=frozenset(manifest.extra.get("print_files", ("gcode",))),
            tray_mapping=bool(manifest.extra.get("tray_mapping", False)),
        )


def read_manifest(directory: Path, package: str) -> DriverManifest:
    """Parse and check `directory/manifest.json`; raise ValueError naming the bad field."""
    try:
        return DriverManifest.of(loader.read_manifest(directory, package, PRINTER))
    except loader.PluginError as exc:
        raise ValueError(str(exc)) from None


class DriverRegistry:
    """The drivers found under one package directory, or the printer plug-ins of a catalogue."""

    def __init__(
        self, root: Path | None = None, package: str = "", *, catalog: Catalog | None = None
    ) -> None:
        self.catalog = catalog or Catalog([Root(root or Path(__file__).parent, package, PRINTER)])
        self._manifests: dict[str, DriverManifest] | None = None
        self._classes: dict[str, type[PrinterDriver]] = {}
        self._broken: dict[str, str] = {}

    def manifests(self) -> dict[str, DriverManifest]:
        """Manifests by protocol, read once; a broken manifest is logged and skipped."""
        if self._manifests is None:
            found = self.catalog.manifests(PRINTER)
            self._manifests = {m.protocol: m for m in map(DriverManifest.of, found)}
        return self._manifests

    def manifest(self, protocol: str) -> DriverManifest:
        """The manifest of `protocol`, or DriverUnavailable."""
        try:
            return self.manifests()[protocol]
        except KeyError:
            known = ", ".join(sorted(self.manifests())) or "none"
            raise DriverUnavailable(
                f"no printer driver for protocol '{protocol}' (available: {known})"
            ) from None

    def load_driver_class(self, protocol: str) -> type[PrinterDriver]:
        """Import the driver of `protocol`; an import failure is logged once and reported."""
        if protocol in self._classes:
            return self._classes[protocol]
        if protocol in self._broken:
            raise DriverUnavailable(self._broken[protocol])
        manifest = self.manifest(protocol)
        try:
            cls = loader.load_entry(manifest.plugin)
            if not (isinstance(cls, type) and issubclass(cls, PrinterDriver)):
                raise TypeError(f"{manifest.class_name} is not a PrinterDriver")
        except Exception as exc:  # any failure in plug-in code must not crash the hub
            cause = exc.__cause__ if isinstance(exc, loader.PluginError) else exc
            reason = f"printer driver '{protocol}' failed to load: {type(cause).__name__}: {cause}"
            log.error(reason)
            self._broken[protocol] = reason
            raise DriverUnavailable(reason) from exc
        self._classes[protocol] = cls
        return cls

    def available_protocols(self) -> list[str]:
        """Protocols with a valid manifest and no known import failure."""
        return sorted(p for p in self.manifests() if p not in self._broken)


_default = DriverRegistry(Path(__file__).parent, __package__ or "integrations.printers")


def default_registry() -> DriverRegistry:
    """The registry of the drivers shipped in this package."""
    return _default


def load_driver_class(protocol: str) -> type[PrinterDriver]:
    """Import and return the driver class for `protocol` (DriverUnavailable if none)."""
    return _default.load_driver_class(protocol)


def available_protocols() -> list[str]:
    """Protocols the hub has drivers for."""
    return _default.available_protocols()


def capabilities(protocol: str) -> frozenset[str]:
    """Commands a protocol supports, from its manifest."""
    return _default.manifest(protocol).capabilities


def default_port(protocol: str) -> int:
    """The protocol's default port, from its manifest."""
    return _default.manifest(protocol).default_port


def config_schema(protocol: str) -> dict[str, Any]:
    """JSON Schema of a protocol's secrets and options."""
    return _default.manifest(protocol).config_schema
