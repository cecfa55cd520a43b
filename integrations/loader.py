"""The one plug-in loader: manifests are read before any code is imported, entry points on demand.

Every integration is a folder with a `manifest.json` (checked against `MANIFEST_SCHEMA`):

    {"kind": "outbound", "name": "MQTT", "version": "1.0.0",
     "entry_point": "plugin:setup", "config_schema": "config_schema.json"}

`kind` says what the entry point is. For `printer` it is a `PrinterDriver` subclass (and the
manifest also carries `protocol`, `default_port`, `capabilities`); for every other kind
(`outbound`, `notify`, …) it is `setup(ctx, config)`, called once at start-up, plain or async,
returning what stops it: an object with `stop()`/`close()` (plain or async), a callable, or
None when the plug-in has nothing to run. A plug-in's id is its folder name; its config is the
settings section of that name (or `config_section`). A broken manifest, an import error, an
invalid config or a failing `setup` is logged and that one plug-in is skipped.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)

PRINTER = "printer"
OUTBOUND = "outbound"
NOTIFY = "notify"

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "3DPrintForge plug-in manifest",
    "type": "object",
    "required": ["kind", "name", "version", "entry_point"],
    "properties": {
        "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "name": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "entry_point": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"},
        "config_schema": {"type": "string", "minLength": 1},
        "config_section": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        # Printer drivers only.
        "protocol": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "default_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "capabilities": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        # Fields a printer record of this protocol must have (present and not empty).
        "required_fields": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        # The kinds of print file the printer starts ("gcode", "3mf"; G-code when absent) and
        # whether a start maps the file's filaments to the printer's trays (Bambu's AMS).
        "print_files": {
            "type": "array",
            "items": {"enum": ["gcode", "3mf"]},
            "minItems": 1,
            "uniqueItems": True,
        },
        "tray_mapping": {"type": "boolean"},
    },
    "if": {"properties": {"kind": {"const": PRINTER}}},
    "then": {"required": ["protocol", "default_port", "capabilities", "config_schema"]},
}
_MANIFEST_VALIDATOR = Draft202012Validator(MANIFEST_SCHEMA)


class PluginError(Exception):
    """A plug-in cannot be used; the message says which one and why."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a plug-in declares about itself, read before any of its code runs."""

    id: str
    kind: str
    name: str
    version: str
    module: str
    attr: str
    config_section: str
    config_schema: dict[str, Any] | None
    directory: Path
    extra: Mapping[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def _checked_schema_text(text: str) -> str:
    """Check a config schema against JSON Schema's own once per process (every hub start and
    every test's hub read the same few files; the check is most of a manifest's cost)."""
    Draft202012Validator.check_schema(json.loads(text))
    return text


def _checked_schema(text: str) -> dict[str, Any]:
    """A plug-in's config schema, parsed and checked (a fresh copy for each caller)."""
    schema: dict[str, Any] = json.loads(_checked_schema_text(text))
    return schema


def read_manifest(directory: Path, package: str, default_kind: str | None = None) -> Manifest:
    """Parse and check `directory/manifest.json`; PluginError names the bad field.

    `default_kind` is the kind of a folder that holds one kind only (`integrations/printers/`)."""
    try:
        raw = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PluginError(f"manifest.json unreadable: {exc}") from None
    if isinstance(raw, dict) and default_kind is not None:
        raw.setdefault("kind", default_kind)
    errors = sorted(_MANIFEST_VALIDATOR.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(manifest)"
        raise PluginError(f"manifest field '{where}': {errors[0].message}")
    schema: dict[str, Any] | None = None
    if "config_schema" in raw:
        try:
            schema = _checked_schema((directory / raw["config_schema"]).read_text(encoding="utf-8"))
        except Exception as exc:  # any broken schema file: this plug-in only
            raise PluginError(f"config schema {raw['config_schema']!r}: {exc}") from None
    module, _, attr = raw["entry_point"].partition(":")
    known = {"kind", "name", "version", "entry_point", "config_schema", "config_section"}
    return Manifest(
        id=directory.name,
        kind=raw["kind"],
        name=raw["name"],
        version=raw["version"],
        module=f"{package}.{directory.name}.{module}",
        attr=attr,
        config_section=raw.get("config_section", directory.name),
        config_schema=schema,
        directory=directory,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def discover(
    root: Path, package: str, kind: str | None = None, default_kind: str | None = None
) -> list[Manifest]:
    """The valid manifests in the sub-folders of `root` (of one `kind` if given), by folder name."""
    found: list[Manifest] = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (directory / "manifest.json").is_file():
            continue
        try:
            manifest = read_manifest(directory, package, default_kind)
        except PluginError as exc:
            log.warning("skipping plug-in in %s: %s", directory, exc)
            continue
        if kind is None or manifest.kind == kind:
            found.append(manifest)
    return found


def load_entry(manifest: Manifest) -> Any:
    """Import the plug-in's module and return its entry point; PluginError when that fails."""
    try:
        module = importlib.import_module(manifest.module)
        return getattr(module, manifest.attr)
    except Exception as exc:  # any failure in plug-in code must not crash the hub
        raise PluginError(
            f"plug-in '{manifest.id}' failed to load: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(frozen=True, slots=True)
class Root:
    """A folder of plug-ins and the importable package it is."""

    path: Path
    package: str
    default_kind: str | None = None


SHIPPED = (
    Root(Path(__file__).parent, __package__ or "integrations"),
    Root(Path(__file__).parent / "printers", "integrations.printers", PRINTER),
)


class Catalog:
    """The plug-ins found under some roots; manifests are read once, code imported on demand."""

    def __init__(self, roots: Iterable[Root] = SHIPPED) -> None:
        self.roots = tuple(roots)
        self._manifests: list[Manifest] | None = None

    def with_root(self, path: Path, package: str, default_kind: str | None = None) -> Catalog:
        """A catalogue of these roots plus one more (tests add their toy plug-ins this way)."""
        return Catalog((*self.roots, Root(path, package, default_kind)))

    def manifests(self, kind: str | None = None) -> list[Manifest]:
        """Every valid manifest (of one `kind` if given)."""
        if self._manifests is None:
            self._manifests = [
                m
                for root in self.roots
                for m in discover(root.path, root.package, default_kind=root.default_kind)
            ]
        return [m for m in self._manifests if kind is None or m.kind == kind]


Stop = Callable[[], Awaitable[None]]


def config_of(settings: Any, manifest: Manifest) -> Any:
    """The plug-in's settings section (`settings.<config_section>`), or {} when there is none."""
    section = getattr(settings, manifest.config_section, None)
    if section is None and isinstance(settings, Mapping):
        section = settings.get(manifest.config_section)
    return {} if section is None else section


def _as_mapping(config: Any) -> Mapping[str, Any] | None:
    if isinstance(config, Mapping):
        return config
    if is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in fields(config)}
    return None


def _stopper(handle: Any) -> Stop | None:
    """Whatever `setup` returned, as one async stop function."""
    if handle is None:
        return None
    method = getattr(handle, "stop", None) or getattr(handle, "close", None)
    target = method if callable(method) else handle
    if not callable(target):
        raise PluginError(f"setup returned {type(handle).__name__}, which cannot be stopped")

    async def stop() -> None:
        result = target()
        if inspect.isawaitable(result):
            await result

    return stop


@dataclass
class Running:
    """The started plug-ins, stopped in reverse order of starting."""

    stops: list[tuple[str, Stop]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Ids of the plug-ins running now."""
        return [name for name, _ in self.stops]

    async def stop(self, within: float = 10.0) -> None:
        """Stop every plug-in, newest first; one that fails or hangs is logged and left."""
        while self.stops:
            name, stop = self.stops.pop()
            try:
                await asyncio.wait_for(stop(), within)
            except Exception as exc:  # a plug-in's stop must not keep the others running
                log.error("plug-in '%s' failed to stop: %s: %s", name, type(exc).__name__, exc)


async def start(manifests: Iterable[Manifest], ctx: Any, settings: Any) -> Running:
    """Call `setup(ctx, config)` of each plug-in in order; a failing one is logged and skipped."""
    running = Running()
    for manifest in manifests:
        if manifest.kind == PRINTER:
            continue  # drivers are started per printer by the printer manager
        try:
            config = config_of(settings, manifest)
            plain = _as_mapping(config)
            if manifest.config_schema is not None and plain is not None:
                errors = list(Draft202012Validator(manifest.config_schema).iter_errors(plain))
                if errors:
                    where = ".".join(str(p) for p in errors[0].absolute_path) or "(section)"
                    raise PluginError(f"config [{manifest.config_section}] {where}: "
                                      f"{errors[0].message}")  # fmt: skip
            setup = load_entry(manifest)
            handle = setup(ctx, config)
            if inspect.isawaitable(handle):
                handle = await handle
            stop = _stopper(handle)
        except Exception as exc:  # one failing integration never takes the hub down
            reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            log.error("plug-in '%s' (%s) skipped: %s", manifest.id, manifest.kind, reason)
            running.failed[manifest.id] = reason
            continue
        if stop is not None:
            running.stops.append((manifest.id, stop))
            log.info("plug-in '%s' (%s) started", manifest.id, manifest.kind)
    return running
