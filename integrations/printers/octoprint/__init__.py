"""Printers driven by an OctoPrint server."""
