"""Toy plug-ins defined inside the test suite, loaded by the real loader (integrations/loader.py)."""
