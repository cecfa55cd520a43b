"""Encoded JSON bodies of the busiest reads (printer listing, live status), reused while unchanged."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response

from api.registry import Page
from hub.model import PrinterState
from hub.runtime import Hub, status_payload
from integrations.printers.base import LinkInfo

# Entries for printers that are gone are dropped once this many more than the fleet pile up.
SPARE_STATUS_ENTRIES = 64


class JsonBodies:
    """One app's encoded bodies: the printer listing per printers-table version, and each
    printer's status per state snapshot and link facts.

    The bytes are what the app's JSON provider makes of the same value (what returning the dict
    from a view sends), so answers are identical to building them per request."""

    def __init__(self, app: Quart, hub: Hub) -> None:
        self.app = app
        self.hub = hub
        self._listing: tuple[int, bytes] | None = None
        self._rows_cache: tuple[int, list[dict[str, Any]]] | None = None
        self._status: dict[str, tuple[PrinterState, LinkInfo | None, bytes]] = {}
        self._content_type: str | None = None

    def encode(self, value: Any) -> bytes:
        """`value` as the app's JSON provider would send it in a response body."""
        provider = self.app.json
        compact = getattr(provider, "compact", None)
        if (compact is None and self.app.debug) or compact is False:
            text = provider.dumps(value, indent=2)
        else:
            text = provider.dumps(value, separators=(",", ":"))
        return f"{text}\n".encode()

    def response(self, body: bytes) -> Response:
        """A 200 JSON response carrying `body`."""
        if self._content_type is None:
            mimetype = getattr(self.app.json, "mimetype", "application/json")
            self._content_type = self.app.response_class(mimetype=mimetype).content_type
        return self.app.response_class(body, content_type=self._content_type)

    def _rows(self) -> list[dict[str, Any]]:
        """Every configured printer's public form, by name then id, per table version."""
        printers = self.hub.printers
        version = printers.version
        cached = self._rows_cache
        if cached is None or cached[0] != version:
            rows = sorted(printers.values(), key=lambda p: (p.name, p.id))
            cached = self._rows_cache = (version, [p.public() for p in rows])
        return cached[1]

    def listing(self) -> Response:
        """Every configured printer, by name then id (secrets never included)."""
        version = self.hub.printers.version
        cached = self._listing
        if cached is None or cached[0] != version:
            rows = self._rows()
            cached = self._listing = (version, self.encode({"items": rows, "total": len(rows)}))
        return self.response(cached[1])

    def listing_page(self, page: Page) -> Response:
        """One page of the listing, in the same order."""
        rows = self._rows()
        items = rows[page.offset : page.offset + page.per_page]
        return self.response(self.encode(page.envelope(items, len(rows))))

    def status(self, printer_id: str) -> Response:
        """One printer's live state plus connection facts (NotFound when not configured)."""
        state, link = self.hub.live(printer_id)
        cached = self._status.get(printer_id)
        if cached is None or cached[0] is not state or cached[1] != link:
            if len(self._status) > len(self.hub.printers) + SPARE_STATUS_ENTRIES:
                for gone in [k for k in self._status if k not in self.hub.printers]:
                    del self._status[gone]
            cached = (state, link, self.encode(status_payload(state, link)))
            self._status[printer_id] = cached
        return self.response(cached[2])
