"""User administration: CRUD, the last-admin guard, duplicates and validation."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store import users as users_store
from tests.api.conftest import Api, assert_problem
from tests.conftest import ONE_ENGINE


async def _create(api: Api, **body: Any) -> Any:
    return await api.client.post("/api/users", headers=api.auth("admin"), json=body)


async def test_users_crud(api: Api) -> None:
    admin = api.auth("admin")
    r = await _create(api, username="maker.jo", password="jo-password-1", role="operator")
    assert r.status_code == 201
    user = await r.get_json()
    assert user["username"] == "maker.jo" and user["role"] == "operator"
    assert set(user) == {"id", "username", "role", "disabled", "created_at", "updated_at"}
    assert r.headers["Location"] == f"/api/users/{user['id']}"

    got = await api.client.get(r.headers["Location"], headers=admin)
    assert got.status_code == 200
    assert await got.get_json() == user

    listing = await (await api.client.get("/api/users", headers=admin)).get_json()
    assert listing["total"] == 4
    assert [u["username"] for u in listing["items"]] == ["admin", "maker.jo", "operator", "viewer"]
    assert all("password_hash" not in u for u in listing["items"])
    page = await (await api.client.get("/api/users?page=2&per_page=3", headers=admin)).get_json()
    assert page["page"] == 2 and page["per_page"] == 3 and page["total"] == 4
    assert [u["username"] for u in page["items"]] == ["viewer"]

    r = await api.client.put(
        f"/api/users/{user['id']}",
        headers=admin,
        json={"role": "viewer", "password": "new-pass-12"},
    )
    assert r.status_code == 200
    assert (await r.get_json())["role"] == "viewer"
    stored = await users_store.by_id(api.hub.db, user["id"])
    assert stored is not None and stored.role == "viewer"
    login = await api.client.post(
        "/api/auth/login", json={"username": "maker.jo", "password": "new-pass-12"}
    )
    assert login.status_code == 200
    old = await api.client.post(
        "/api/auth/login", json={"username": "maker.jo", "password": "jo-password-1"}
    )
    assert old.status_code == 401

    r = await api.client.delete(f"/api/users/{user['id']}", headers=admin)
    assert r.status_code == 204
    await assert_problem(await api.client.get(f"/api/users/{user['id']}", headers=admin), 404)
    assert await users_store.by_id(api.hub.db, user["id"]) is None


async def test_unknown_user_is_404(api: Api) -> None:
    admin = api.auth("admin")
    missing = "/api/users/00000000-0000-0000-0000-000000000000"
    await assert_problem(await api.client.get(missing, headers=admin), 404, "not_found")
    await assert_problem(
        await api.client.put(missing, headers=admin, json={"role": "viewer"}), 404, "not_found"
    )
    await assert_problem(
        await api.client.put(missing, headers=admin, json={"password": "long-enough-1"}),
        404,
        "not_found",
    )
    await assert_problem(await api.client.delete(missing, headers=admin), 404, "not_found")


async def test_last_admin_cannot_be_deleted_or_demoted(api: Api) -> None:
    admin = api.auth("admin")
    admin_id = api.users["admin"].id
    r = await api.client.delete(f"/api/users/{admin_id}", headers=admin)
    await assert_problem(r, 409, "last_admin")
    for role in ("operator", "viewer"):
        r = await api.client.put(f"/api/users/{admin_id}", headers=admin, json={"role": role})
        await assert_problem(r, 409, "last_admin")
    stored = await users_store.by_id(api.hub.db, admin_id)
    assert stored is not None and stored.role == "admin"
    # Keeping the role (or changing only the password) is fine.
    r = await api.client.put(f"/api/users/{admin_id}", headers=admin, json={"role": "admin"})
    assert r.status_code == 200

    # With a second admin, the first may step down and then be deleted.
    r = await _create(api, username="admin2", password="admin2-pass-1", role="admin")
    assert r.status_code == 201
    second = await r.get_json()
    r = await api.client.put(f"/api/users/{admin_id}", headers=admin, json={"role": "viewer"})
    assert r.status_code == 200
    other_admin = api.fresh_auth("admin")  # the demoted user's token no longer has admin rights
    await assert_problem(await api.client.get("/api/users", headers=other_admin), 403)
    token = api.hub.auth.issue(await users_store.by_id(api.hub.db, second["id"]))  # type: ignore[arg-type]
    second_auth = {"Authorization": f"Bearer {token}"}
    r = await api.client.delete(f"/api/users/{admin_id}", headers=second_auth)
    assert r.status_code == 204
    # Now admin2 is the last admin.
    r = await api.client.delete(f"/api/users/{second['id']}", headers=second_auth)
    await assert_problem(r, 409, "last_admin")


async def test_duplicate_username_is_409(api: Api) -> None:
    r = await _create(api, username="operator", password="another-pass-1", role="viewer")
    body = await assert_problem(r, 409, "conflict")
    assert "operator" in body["detail"]
    total = (await (await api.client.get("/api/users", headers=api.auth("admin"))).get_json())[
        "total"
    ]
    assert total == 3


@ONE_ENGINE
@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (
            {"username": "has space", "password": "long-enough-1", "role": "viewer"},
            "username",
            "pattern",
        ),
        (
            {"username": "x" * 65, "password": "long-enough-1", "role": "viewer"},
            "username",
            "pattern",
        ),
        ({"username": "shorty", "password": "short", "role": "viewer"}, "password", "minLength"),
        ({"username": "rooty", "password": "long-enough-1", "role": "root"}, "role", "enum"),
        ({"username": "nopass", "role": "viewer"}, "password", "required"),
        (
            {"username": "extra", "password": "long-enough-1", "role": "viewer", "admin": True},
            "admin",
            "additionalProperties",
        ),
        ({"username": 5, "password": "long-enough-1", "role": "viewer"}, "username", "type"),
    ],
)
async def test_user_create_validation(api: Api, body: Any, field: str, rule: str) -> None:
    r = await api.client.post("/api/users", headers=api.auth("admin"), json=body)
    problem = await assert_problem(r, 400, "validation_error")
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["rule"] == rule
    assert field in problem["detail"] and rule in problem["detail"]


@ONE_ENGINE
async def test_user_update_validation(api: Api) -> None:
    target = f"/api/users/{api.users['viewer'].id}"
    for body, field, rule in [
        ({}, "(body)", "minProperties"),
        ({"role": "superuser"}, "role", "enum"),
        ({"username": "renamed"}, "username", "additionalProperties"),
        ({"password": "short"}, "password", "minLength"),
    ]:
        r = await api.client.put(target, headers=api.auth("admin"), json=body)
        problem = await assert_problem(r, 400, "validation_error")
        assert (problem["errors"][0]["field"], problem["errors"][0]["rule"]) == (field, rule)


@ONE_ENGINE
async def test_user_list_query_is_validated(api: Api) -> None:
    for query, field in [("page=0", "page"), ("per_page=501", "per_page"), ("page=abc", "page")]:
        r = await api.client.get(f"/api/users?{query}", headers=api.auth("admin"))
        problem = await assert_problem(r, 400, "validation_error")
        assert problem["errors"][0]["field"] == field
