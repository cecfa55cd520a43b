"""API fixtures: a hub on each database engine with an admin, an operator and a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing.app import TestApp
from quart.typing import TestClientProtocol

from api.app import create_app
from config.loader import RateLimitSettings, load
from hub.runtime import Hub
from hub.store import users as users_store
from hub.store.users import User

ADMIN_PASSWORD = "admin-password-1"
PASSWORDS = {"admin": ADMIN_PASSWORD, "operator": "operator-pass-1", "viewer": "viewer-pass-1"}
PROBLEM_JSON = "application/problem+json"


@dataclass
class Api:
    """A running app, its hub, a client and a token per role."""

    app: Quart
    hub: Hub
    client: TestClientProtocol
    tokens: dict[str, str]
    users: dict[str, User] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        """Authorization header for a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def fresh_auth(self, role: str) -> dict[str, str]:
        """Authorization header with a newly issued token for a role's user (safe to revoke)."""
        return {"Authorization": f"Bearer {self.hub.auth.issue(self.users[role])}"}


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


async def reset_database(db_url: str) -> None:
    """Migrate the database and empty every table."""
    from tests.conftest import prepare_database

    database = await prepare_database(db_url)
    await database.disconnect()


@asynccontextmanager
async def running_app(settings: Any) -> AsyncIterator[tuple[Hub, Quart]]:
    """Start a hub and its app on `settings`; stop both on exit."""
    hub_ = Hub(settings)
    app = create_app(hub_)
    # Quart's default of 6 s for start-up and shutdown is not a bound the hub promises: on a
    # loaded machine a start-up (migrations, plug-ins, drivers) has taken longer.
    async with TestApp(app, startup_timeout=30, shutdown_timeout=30):
        yield hub_, app


@pytest.fixture
async def api(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """A started hub + app on each engine; tables cleared first."""
    await reset_database(db_url)

    settings = make_settings(db_url, tmp_path)
    marker = request.node.get_closest_marker("rate_limit")
    if marker is not None:
        settings = replace(settings, rate_limit=RateLimitSettings(True, *marker.args))
    async with running_app(settings) as (hub_, app):
        tokens = {"admin": await _token(app, "admin", ADMIN_PASSWORD)}
        admin = await users_store.by_username(hub_.db, "admin")
        assert admin is not None
        users = {"admin": admin}
        for role in ("operator", "viewer"):
            users[role] = await users_store.create(
                hub_.db, role, hub_.auth.hash_password(PASSWORDS[role]), role
            )
            tokens[role] = await _token(app, role, PASSWORDS[role])
        yield Api(app, hub_, app.test_client(), tokens, users)


async def _token(app: Quart, username: str, password: str) -> str:
    response = await app.test_client().post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    token: str = (await response.get_json())["token"]
    return token


async def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check an RFC 9457 problem answer and return its body."""
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = await response.get_json(force=True)
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"]
    assert body["type"] and body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each schemathesis operation a node id of its own (`…[GET /api/health]`).

    With pytest 9.2, schemathesis 4's items all carry the test's bare id (pytest builds it
    from the original name and a callspec they have none of). pytest-xdist hands out work by
    node id, so with workers only the first of the 67 operations ran; `--lf` and `--deselect`
    could not name one either."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if isinstance(label, str) and item._id.params is None:
            item._id = item._id.with_params(label)
