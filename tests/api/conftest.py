"""API fixtures: a hub on each database engine with an admin, an operator and a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from api.app import create_app
from config.loader import RateLimitSettings, load
from hub.runtime import Hub
from hub.store import users as users_store

ADMIN_PASSWORD = "admin-password-1"
PASSWORDS = {"admin": ADMIN_PASSWORD, "operator": "operator-pass-1", "viewer": "viewer-pass-1"}


@dataclass
class Api:
    """A running app, its hub, a client and a token per role."""

    app: Quart
    hub: Hub
    client: TestClientProtocol
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        """Authorization header for a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_settings(db_url: str, tmp_path: Path, **env: str) -> Any:
    """Settings for a test hub (rate limits off unless asked)."""
    base = {
        "PRINTFORGE_DATABASE_URL": db_url,
        "PRINTFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PRINTFORGE_DATA_DIR": str(tmp_path / "data"),
        "PRINTFORGE_RATE_LIMIT_ENABLED": "false",
    }
    base.update(env)
    return load(None, env=base)


@pytest.fixture
async def api(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """A started hub + app on each engine; tables cleared first."""
    from hub.store import db as store
    from tests.conftest import _clear

    database = await store.connect(db_url)
    await store.migrate(database)
    await _clear(database)
    await database.disconnect()

    settings = make_settings(db_url, tmp_path)
    marker = request.node.get_closest_marker("rate_limit")
    if marker is not None:
        settings = replace(settings, rate_limit=RateLimitSettings(True, *marker.args))
    hub = Hub(settings)
    app = create_app(hub)
    async with app.test_app():
        tokens = {"admin": await _token(app, "admin", ADMIN_PASSWORD)}
        for role in ("operator", "viewer"):
            await users_store.create(hub.db, role, hub.auth.hash_password(PASSWORDS[role]), role)
            tokens[role] = await _token(app, role, PASSWORDS[role])
        yield Api(app, hub, app.test_client(), tokens)


async def _token(app: Quart, username: str, password: str) -> str:
    response = await app.test_client().post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    token: str = (await response.get_json())["token"]
    return token
