"""Health: database, version, uptime."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from hub.runtime import package_version
from tests.api.conftest import Api
from tests.helpers import wait_for


async def test_health_reports_ok(api: Api) -> None:
    r = await api.client.get("/api/health")
    assert r.status_code == 200
    body = await r.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["version"] == package_version() != "0.0.0"
    assert isinstance(body["uptime_s"], int | float)
    assert 0 <= body["uptime_s"] < 600
    later = await (await api.client.get("/api/health")).get_json()
    assert later["uptime_s"] >= body["uptime_s"]


async def test_health_reports_an_unreachable_database(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(api.hub.db, "fetch_val", lambda *a, **k: broken())
    r = await api.client.get("/api/health")
    assert r.status_code == 503
    body = await r.get_json()
    assert body["status"] == "degraded"
    assert body["database"] == "unreachable"
    assert body["version"] == package_version()


async def test_concurrent_health_requests_share_one_database_probe(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[str] = []
    real_fetch_val = api.hub.db.fetch_val

    async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
        probes.append(query)
        return await real_fetch_val(query, *args, **kwargs)

    monkeypatch.setattr(api.hub.db, "fetch_val", counted)
    answers = await asyncio.gather(*(api.client.get("/api/health") for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    # One query per request before: twenty queued behind whatever else the database does.
    assert 1 <= len(probes) <= 5, probes


async def test_health_notices_an_outage_after_answering_ok(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await api.client.get("/api/health")).status_code == 200

    async def broken() -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(api.hub.db, "fetch_val", lambda *a, **k: broken())

    async def reported() -> bool:
        return (await api.client.get("/api/health")).status_code == 503

    # A recent probe's answer stands only briefly (hub/store/health.py FRESH_S).
    started = time.monotonic()
    await wait_for(reported, timeout=10, interval=0.05, what="health reporting the outage")
    assert time.monotonic() - started < 5
