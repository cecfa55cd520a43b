"""Klipper printers through the Moonraker API server."""
