"""Outbound fixtures (webhooks, notification channels): a hub with fast retry rules, an admin
client, and a loopback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from hub.runtime import Hub
from tests.api.conftest import (
    ADMIN_PASSWORD,
    make_settings,
    reset_database,
    running_app,
)
from tests.integrations.receiver import Receiver

FAST = {
    "PRINTFORGE_OUTBOX_BACKOFF_INITIAL_S": "0.05",
    "PRINTFORGE_OUTBOX_BACKOFF_MAX_S": "0.2",
    "PRINTFORGE_OUTBOX_TIMEOUT_S": "2",
    "PRINTFORGE_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
    "PRINTFORGE_NOTIFY_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
}


@dataclass
class Outbound:
    """A running hub and app, an admin's headers, and a receiver."""

    hub: Hub
    app: Quart
    client: TestClientProtocol
    admin: dict[str, str]
    receiver: Receiver

    async def add_webhook(self, path: str = "/hook", **fields: Any) -> dict[str, Any]:
        """Create an endpoint pointing at the receiver; return the answer (with its secret)."""
        body = {"url": self.receiver.url + path, "events": ["*"], **fields}
        r = await self.client.post("/api/webhooks", json=body, headers=self.admin)
        assert r.status_code == 201, await r.get_data(as_text=True)
        created: dict[str, Any] = await r.get_json()
        return created

    async def add_channel(self, **fields: Any) -> dict[str, Any]:
        """Create a notification channel; return the answer."""
        r = await self.client.post("/api/notifications/channels", json=fields, headers=self.admin)
        assert r.status_code == 201, await r.get_data(as_text=True)
        created: dict[str, Any] = await r.get_json()
        return created

    async def deliveries(
        self, hook_id: str, base: str = "/api/webhooks", **query: str
    ) -> list[dict[str, Any]]:
        """A webhook's (or, with `base`, a channel's) deliveries, newest first."""
        r = await self.client.get(
            f"{base}/{hook_id}/deliveries", query_string=query, headers=self.admin
        )
        assert r.status_code == 200, await r.get_data(as_text=True)
        items: list[dict[str, Any]] = (await r.get_json())["items"]
        return items


@asynccontextmanager
async def outbound_hub(
    db_url: str, tmp_path: Path, receiver: Receiver, **env: str
) -> AsyncIterator[Outbound]:
    """A started hub on `db_url` with the fast rules plus `env`."""
    settings = make_settings(db_url, tmp_path, **{**FAST, **env})
    async with running_app(settings) as (hub_, app):
        client = app.test_client()
        r = await client.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        token = (await r.get_json())["token"]
        yield Outbound(hub_, app, client, {"Authorization": f"Bearer {token}"}, receiver)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1."""
    found = await Receiver().start()
    yield found
    await found.stop()


@pytest.fixture
async def make_outbound(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> AsyncIterator[Callable[..., Any]]:
    """Start hubs on one database (fresh once per test); each closes at the test's end."""
    await reset_database(db_url)
    stack: list[Any] = []

    async def start(**env: str) -> Outbound:
        cm = outbound_hub(db_url, tmp_path, receiver, **env)
        stack.append(cm)
        return await cm.__aenter__()

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def outbound(make_outbound: Callable[..., Any]) -> Outbound:
    """One hub with the fast rules."""
    found: Outbound = await make_outbound()
    return found
