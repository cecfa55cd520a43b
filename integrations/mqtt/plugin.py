"""The MQTT plug-in's entry point: build the bridge from `[mqtt]` and start it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from typing import Any

from config.loader import MqttSettings
from hub.context import Context
from hub.runtime import package_version
from hub.store import kv
from integrations.mqtt.bridge import MqttBridge
from integrations.mqtt.discovery import Discovery
from integrations.mqtt.payloads import Topics


def hub_url(ctx: Context, settings: MqttSettings) -> str:
    """Where people reach the hub: `[mqtt] hub_url`, else this host's name and HTTPS port."""
    if settings.hub_url:
        return settings.hub_url.rstrip("/")
    server = ctx.settings.server
    scheme = "https" if server.tls else "http"
    return f"{scheme}://{socket.gethostname()}:{server.https_port}"


async def setup(ctx: Context, config: MqttSettings | Mapping[str, Any]) -> MqttBridge | None:
    """Start publishing to the configured broker; nothing runs while `url` is unset."""
    settings = MqttSettings(**config) if isinstance(config, Mapping) else config
    if not settings.url:
        return None
    # One id per installation, kept in the database: the hub device's identifier and the
    # default client id stay the same across restarts.
    hub_id = await kv.get_or_create(ctx.db, "hub_id", uuid.uuid4().hex)
    discovery = Discovery(
        prefix=settings.discovery_prefix,
        topics=Topics(settings.base_topic),
        hub_id=hub_id,
        hub_url=hub_url(ctx, settings),
        version=package_version(),
        commands=settings.commands,
        ha_status=settings.ha_status_topic,
    )
    bridge = MqttBridge(ctx, settings, discovery)
    bridge.start()
    return bridge
