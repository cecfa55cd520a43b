"""Sessions end when the account changes: a new password, a new role or disabling the account
revokes its existing tokens at once; login throttling cannot lock another user out for long."""

from __future__ import annotations

import pytest

from hub.auth import ACCOUNT_MAX_WAIT_S, LoginThrottle
from tests.api.conftest import PASSWORDS, Api, assert_problem


async def _login(api: Api, username: str, password: str, addr: str = "10.0.0.1") -> int:
    r = await api.client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        scope_base={"client": (addr, 1234)},
    )
    return r.status_code


async def _me(api: Api, token: str) -> int:
    r = await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


@pytest.mark.parametrize(
    "change", [{"password": "a-brand-new-password"}, {"role": "viewer"}, {"disabled": True}]
)
async def test_account_changes_revoke_existing_tokens(api: Api, change: dict[str, object]) -> None:
    operator = api.users["operator"]
    old = api.tokens["operator"]
    assert await _me(api, old) == 200
    r = await api.client.put(f"/api/users/{operator.id}", headers=api.auth("admin"), json=change)
    assert r.status_code == 200, await r.get_data(as_text=True)
    r = await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {old}"})
    problem = await assert_problem(r, 401, "unauthorized")
    assert "revoked" in problem["detail"] or "disabled" in problem["detail"]
    password = str(change.get("password", PASSWORDS["operator"]))
    r = await api.client.post(
        "/api/auth/login", json={"username": "operator", "password": password}
    )
    if change.get("disabled"):
        assert r.status_code == 401  # a disabled account cannot log in
        assert (
            await (
                await api.client.get(f"/api/users/{operator.id}", headers=api.auth("admin"))
            ).get_json()
        )["disabled"] is True
    else:
        assert r.status_code == 200  # a new session made just after the change works
        assert await _me(api, (await r.get_json())["token"]) == 200
    # Other accounts keep their sessions.
    assert await _me(api, api.tokens["viewer"]) == 200


async def test_own_password_change_by_an_admin_revokes_their_old_session(api: Api) -> None:
    admin = api.users["admin"]
    old = api.tokens["admin"]
    r = await api.client.put(
        f"/api/users/{admin.id}", headers=api.auth("admin"), json={"password": "admin-new-pass-1"}
    )
    assert r.status_code == 200
    assert await _me(api, old) == 401


async def test_the_last_admin_cannot_be_disabled(api: Api) -> None:
    admin = api.users["admin"]
    r = await api.client.put(
        f"/api/users/{admin.id}", headers=api.auth("admin"), json={"disabled": True}
    )
    await assert_problem(r, 409)
    assert await _me(api, api.tokens["admin"]) == 200


def test_account_delay_is_capped_and_address_budget_is_separate() -> None:
    throttle = LoginThrottle(max_failures=5, window_s=900, max_wait_s=ACCOUNT_MAX_WAIT_S)
    for i in range(40):
        throttle.failed("user:victim", float(i))
    # However many guesses someone made, the owner waits a minute at most.
    assert 0 < throttle.retry_after("user:victim", 40.0) <= ACCOUNT_MAX_WAIT_S


async def test_another_accounts_success_does_not_reset_an_address(api: Api) -> None:
    limits = api.hub.settings.auth
    budget = api.hub.auth.address_throttle.max_failures
    assert budget > limits.login_max_failures
    # One address guesses at many accounts, logging in to its own after each guess.
    for i in range(budget - 1):
        assert await _login(api, f"nobody{i}", "wrong-password") == 401
        assert await _login(api, "viewer", PASSWORDS["viewer"]) == 200
    # The successes did not reset the address: its budget is spent with the next guess.
    assert await _login(api, "nobody-else", "wrong-password") == 401
    assert await _login(api, "nobody-more", "wrong-password") == 429
    # Another address is not affected, nor is the viewer's account from there.
    assert await _login(api, "viewer", PASSWORDS["viewer"], addr="10.0.0.2") == 200


async def test_own_password_change_ends_other_sessions_and_answers_a_fresh_token(
    api: Api,
) -> None:
    old = api.tokens["viewer"]
    second = (
        await (
            await api.client.post(
                "/api/auth/login", json={"username": "viewer", "password": PASSWORDS["viewer"]}
            )
        ).get_json()
    )["token"]
    url = "/api/auth/me/password"
    r = await api.client.put(
        url, headers=api.auth("viewer"), json={"current_password": "nope", "new_password": "x" * 9}
    )
    problem = await assert_problem(r, 400, "validation_error")
    assert problem["errors"][0]["field"] == "current_password"
    assert await _me(api, old) == 200  # a wrong current password changes nothing

    r = await api.client.put(
        url,
        headers=api.auth("viewer"),
        json={"current_password": PASSWORDS["viewer"], "new_password": "viewer-new-pass-2"},
    )
    assert r.status_code == 200, await r.get_data(as_text=True)
    fresh = (await r.get_json())["token"]
    assert await _me(api, fresh) == 200
    assert await _me(api, old) == 401 and await _me(api, second) == 401
    assert await _login(api, "viewer", "viewer-new-pass-2") == 200
    assert await _login(api, "viewer", PASSWORDS["viewer"]) == 401
