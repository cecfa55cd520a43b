"""Smoke: the app starts, logs in, lists printers."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_login_and_list(api: Api) -> None:
    r = await api.client.get("/api/printers", headers=api.auth("viewer"))
    assert r.status_code == 200
    assert await r.get_json() == {"items": [], "total": 0}
