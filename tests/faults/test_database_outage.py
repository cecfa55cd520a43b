"""PostgreSQL behind a fault proxy (silent with a warm pool, refused, silent with an empty pool):
while it is unreachable every endpoint that needs it answers 503 problem+json with Retry-After
within about a second, nothing answers 500, and the API recovers by itself once the link is
back."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_PASSWORD, make_settings, reset_database, running_app
from tests.faults.proxy import FaultProxy
from tests.helpers import wait_for

# Endpoints that read the database (the printer listing is served from memory).
NEEDS_DATABASE = ["/api/users", "/api/notifications", "/api/history"]


# A request must get its 503 "within a second"; the bound checked is generous for a loaded
# 2-core machine, and far below the 8+ s a pooled connection on a silent link used to wait.
ANSWER_BOUND_S = 3.0


async def _outage_answers(
    client: object,
    headers: dict[str, str],
    paths: tuple[str, ...] = (*NEEDS_DATABASE, "/api/health"),
) -> list[tuple[str, int, float]]:
    answers = []
    for path in paths:
        started = time.monotonic()
        async with asyncio.timeout(4 * ANSWER_BOUND_S):  # fail, not hang, when it waits
            r = await client.get(path, headers=headers)  # type: ignore[attr-defined]
        took = time.monotonic() - started
        answers.append((path, r.status_code, took))
        assert r.status_code == 503, (path, await r.get_data(as_text=True))
        if path == "/api/health":
            assert (await r.get_json())["database"] == "unreachable"
        else:
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert int(r.headers["Retry-After"]) > 0
            assert (await r.get_json())["code"] == "database_unavailable"
        assert took < ANSWER_BOUND_S, f"{path} took {took:.2f} s to say the database is away"
    return answers


async def _all_ok(client: object, headers: dict[str, str]) -> bool:
    for path in NEEDS_DATABASE:
        if (await client.get(path, headers=headers)).status_code != 200:  # type: ignore[attr-defined]
            return False
    return True


async def test_outage_is_503_with_retry_after_and_recovers(
    pg_url: str, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await reset_database(pg_url)
    url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert url != pg_url
    async with running_app(make_settings(url, tmp_path)) as (hub, app):
        client = app.test_client()
        r = await client.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {(await r.get_json())['token']}"}
        assert await _all_ok(client, headers)
        # The pool holds open connections through the proxy: the case where a request is
        # handed one that no longer answers.
        pool = hub.db._backend._pool  # type: ignore[attr-defined]
        assert pool.get_idle_size() > 0
        assert proxy.open_links > 0

        caplog.clear()
        caplog.set_level(logging.WARNING)
        # 1. Silent with a warm pool: pooled connections and new ones alike get no answer
        # (a dead switch, a half-open link).
        proxy.silent = True
        answers = await _outage_answers(client, headers)
        r = await client.post("/api/auth/login", json={"username": "admin", "password": "x"})
        assert r.status_code == 503
        # The printer listing needs no database: it keeps answering.
        assert (await client.get("/api/printers", headers=headers)).status_code in (200, 503)

        # 2. The link forwards again: the hub recovers by itself (no reset from outside).
        proxy.silent = False
        await wait_for(
            lambda: _all_ok(client, headers), timeout=15, interval=0.2, what="the API again"
        )

        # 3. Refused: the server's address answers with resets and refusals.
        await proxy.refuse()
        answers += await _outage_answers(client, headers)
        r = await client.post("/api/auth/login", json={"username": "admin", "password": "x"})
        assert r.status_code == 503

        # 4. Silent again, now with the pool emptied by the refusals: new connections hang
        # (each answer waits out the connect timeout, so two endpoints stand for all).
        await proxy.resume()
        proxy.silent = True
        answers += await _outage_answers(client, headers, ("/api/notifications", "/api/health"))

        # 5. The link returns: the pool reconnects and every endpoint answers again.
        proxy.silent = False
        proxy.reset_all()
        await wait_for(
            lambda: _all_ok(client, headers), timeout=15, interval=0.2, what="the API again"
        )
        # An outage is one line per event at any level, asyncpg's pool included.
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert not tracebacks, [r.getMessage() for r in tracebacks]
        print("outage answers (path, status, seconds):", answers)
