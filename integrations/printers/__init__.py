"""Printer drivers: one plug-in per protocol, discovered by integrations.printers.registry."""
