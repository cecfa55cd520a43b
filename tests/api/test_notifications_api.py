"""Notifications API: pagination, unread filter, mark one and all read."""

from __future__ import annotations

from hub.store import notifications
from tests.api.conftest import Api


async def test_list_filter_and_mark_read(api: Api) -> None:
    for i in range(5):
        await notifications.add(
            api.hub.db, printer_id="p1", kind="print_finished", severity="info",
            title=f"t{i}", message="m", data={}, created_at=float(i),
        )  # fmt: skip
    viewer = api.auth("viewer")
    r = await api.client.get("/api/notifications?per_page=2&page=2", headers=viewer)
    body = await r.get_json()
    assert r.status_code == 200
    assert (body["total"], body["page"], body["per_page"]) == (5, 2, 2)
    assert [n["title"] for n in body["items"]] == ["t2", "t1"]

    note_id = body["items"][0]["id"]
    r = await api.client.post(f"/api/notifications/{note_id}/read", headers=viewer)
    assert r.status_code == 200 and (await r.get_json())["read"] is True
    r = await api.client.get("/api/notifications?unread=true", headers=viewer)
    assert (await r.get_json())["total"] == 4

    r = await api.client.post("/api/notifications/read-all", headers=viewer)
    assert (await r.get_json()) == {"marked": 4}
    r = await api.client.get("/api/notifications?unread=true", headers=viewer)
    assert (await r.get_json())["total"] == 0

    r = await api.client.post("/api/notifications/nope/read", headers=viewer)
    assert r.status_code == 404
    r = await api.client.get("/api/notifications?per_page=0", headers=viewer)
    problem = await r.get_json()
    assert r.status_code == 400 and problem["errors"][0]["field"] == "per_page"
