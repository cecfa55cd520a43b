"""PostgreSQL behind a fault proxy: while it is unreachable every endpoint that needs it answers
503 problem+json with Retry-After within a second, nothing answers 500, and the API recovers
by itself once the link is back."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_PASSWORD, make_settings, reset_database, running_app
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for

# Endpoints that read the database (the printer listing is served from memory).
NEEDS_DATABASE = ["/api/users", "/api/notifications", "/api/history"]


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the shared PostgreSQL server (the server itself is never
    stopped: other tests use it)."""
    fault = await FaultProxy("127.0.0.1", 5432).start()
    try:
        yield fault
    finally:
        await fault.close()


async def _outage_answers(client: object, headers: dict[str, str]) -> list[tuple[str, int, float]]:
    answers = []
    for path in [*NEEDS_DATABASE, "/api/health"]:
        started = time.monotonic()
        r = await client.get(path, headers=headers)  # type: ignore[attr-defined]
        took = time.monotonic() - started
        answers.append((path, r.status_code, took))
        assert r.status_code == 503, (path, await r.get_data(as_text=True))
        if path != "/api/health":
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert int(r.headers["Retry-After"]) > 0
            assert (await r.get_json())["code"] == "database_unavailable"
        assert took < 1.5, f"{path} took {took:.2f} s to say the database is away"
    return answers


async def test_outage_is_503_with_retry_after_and_recovers(
    pg_url: str, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await reset_database(pg_url)
    url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert url != pg_url
    async with running_app(make_settings(url, tmp_path)) as (_hub, app):
        client = app.test_client()
        r = await client.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {(await r.get_json())['token']}"}
        for path in NEEDS_DATABASE:
            assert (await client.get(path, headers=headers)).status_code == 200, path

        caplog.clear()
        caplog.set_level(logging.WARNING)
        # 1. Refused: the server's address answers with resets and refusals.
        await proxy.refuse()
        await _outage_answers(client, headers)
        r = await client.post("/api/auth/login", json={"username": "admin", "password": "x"})
        assert r.status_code == 503
        # The printer listing needs no database: it keeps answering.
        assert (await client.get("/api/printers", headers=headers)).status_code in (200, 503)

        # 2. Silent: connections are accepted and nothing ever comes back (a dead switch).
        await proxy.resume()
        proxy.silent = True
        await _outage_answers(client, headers)

        # 3. The link returns: the pool reconnects and every endpoint answers again.
        proxy.silent = False
        proxy.reset_all()

        async def all_ok() -> bool:
            for path in NEEDS_DATABASE:
                if (await client.get(path, headers=headers)).status_code != 200:
                    return False
            return True

        await wait_for(all_ok, timeout=15, interval=0.2, what="the API answering again")
        tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
        assert not tracebacks, [r.getMessage() for r in tracebacks]
