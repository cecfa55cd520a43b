"""Discovery of printer drivers from their manifests, importing code only on demand."""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.printers.base import PrinterDriver

log = logging.getLogger(__name__)

_REQUIRED = {
    "name": str,
    "protocol": str,
    "version": str,
    "default_port": int,
    "capabilities": list,
    "config_schema": str,
    "entry_point": str,
}


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


def read_manifest(directory: Path, package: str) -> DriverManifest:
    """Parse and check `directory/manifest.json`; raise ValueError naming the bad field."""
    raw = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("manifest must be a JSON object")
    for key, kind in _REQUIRED.items():
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"manifest field '{key}' must be a {kind.__name__}")
    module, sep, class_name = raw["entry_point"].partition(":")
    if not sep or not module or not class_name:
        raise ValueError("manifest field 'entry_point' must look like 'module:Class'")
    schema = json.loads((directory / raw["config_schema"]).read_text(encoding="utf-8"))
    return DriverManifest(
        name=raw["name"],
        protocol=raw["protocol"],
        version=raw["version"],
        default_port=raw["default_port"],
        capabilities=frozenset(raw["capabilities"]),
        config_schema=schema,
        module=f"{package}.{directory.name}.{module}",
        class_name=class_name,
    )


class DriverRegistry:
    """The drivers found under one package directory."""

    def __init__(self, root: Path, package: str) -> None:
        self.root = root
        self.package = package
        self._manifests: dict[str, DriverManifest] | None = None
        self._classes: dict[str, type[PrinterDriver]] = {}
        self._broken: dict[str, str] = {}

    def manifests(self) -> dict[str, DriverManifest]:
        """Manifests by protocol, read once; a broken manifest is logged and skipped."""
        if self._manifests is None:
            found: dict[str, DriverManifest] = {}
            for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
                if not (directory / "manifest.json").is_file():
                    continue
                try:
                    manifest = read_manifest(directory, self.package)
                except (OSError, ValueError) as exc:
                    log.warning("skipping printer driver in %s: %s", directory, exc)
                    continue
                found[manifest.protocol] = manifest
            self._manifests = found
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
            module = importlib.import_module(manifest.module)
            cls = getattr(module, manifest.class_name)
            if not (isinstance(cls, type) and issubclass(cls, PrinterDriver)):
                raise TypeError(f"{manifest.class_name} is not a PrinterDriver")
        except Exception as exc:  # any failure in plug-in code must not crash the hub
            reason = f"printer driver '{protocol}' failed to load: {type(exc).__name__}: {exc}"
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
