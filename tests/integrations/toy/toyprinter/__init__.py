"""A toy printer protocol: a driver with no network, for the plug-in contract tests."""
