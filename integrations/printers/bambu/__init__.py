"""Bambu Lab LAN-mode printer driver."""
