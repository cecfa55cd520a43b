"""Outbound MQTT: printer state and events for automations, with Home Assistant discovery."""
