"""Health: database, version, uptime."""

from __future__ import annotations

import pytest

from hub.runtime import package_version
from tests.api.conftest import Api


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
