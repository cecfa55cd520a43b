"""Concurrent duplicate creates end in one 201 and 409s, never a 500."""

from __future__ import annotations

import asyncio

from tests.api.conftest import Api


async def test_concurrent_duplicate_printers(api: Api) -> None:
    body = {"name": "P", "protocol": "moonraker", "host": "10.9.8.7", "serial": "RACE1"}
    responses = await asyncio.gather(
        *(api.client.post("/api/printers", json=body, headers=api.auth("admin")) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert len(api.hub.printers) == 1


async def test_concurrent_duplicate_users(api: Api) -> None:
    body = {"username": "twin", "password": "twin-password", "role": "viewer"}
    responses = await asyncio.gather(
        *(api.client.post("/api/users", json=body, headers=api.auth("admin")) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409]
