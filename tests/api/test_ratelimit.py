"""Per-client rate limits: the store's sliding windows and the HTTP behaviour."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

import api.ratelimit
from api.ratelimit import MemoryRateLimitStore, RateLimiter
from tests.api.conftest import Api, assert_problem
from tests.conftest import ONE_ENGINE

# Store ------------------------------------------------------------------------


def test_minute_window_blocks_then_recovers() -> None:
    store = MemoryRateLimitStore(per_minute=3, per_second=10)
    decisions = [store.hit("a", now) for now in (100.0, 110.0, 120.0)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.limit == 3 for d in decisions)

    blocked = store.hit("a", 130.0)
    assert not blocked.allowed
    assert blocked.remaining == 0
    assert blocked.retry_after == 30  # the hit at 100 s leaves the window at 160 s
    # Refused requests do not count: still refused just before the first hit ages out ...
    assert not store.hit("a", 159.5).allowed
    # ... and allowed once it has.
    recovered = store.hit("a", 160.0)
    assert recovered.allowed and recovered.remaining == 0
    assert not store.hit("a", 165.0).allowed
    assert store.hit("a", 170.0).allowed


def test_burst_window_blocks_then_recovers() -> None:
    store = MemoryRateLimitStore(per_minute=100, per_second=2)
    assert store.hit("a", 10.0).allowed
    assert store.hit("a", 10.4).allowed
    blocked = store.hit("a", 10.5)
    assert not blocked.allowed
    assert blocked.retry_after == 1
    assert blocked.remaining == 98  # a burst refusal says what the minute still allows
    assert not store.hit("a", 10.99).allowed
    assert store.hit("a", 11.0).allowed  # the 10.0 hit is a full second old
    assert not store.hit("a", 11.2).allowed
    assert store.hit("a", 11.41).allowed


def test_clients_are_counted_separately() -> None:
    store = MemoryRateLimitStore(per_minute=2, per_second=2)
    assert store.hit("a", 0.0).allowed and store.hit("a", 0.1).allowed
    assert not store.hit("a", 0.2).allowed
    assert store.hit("b", 0.2).allowed
    assert store.hit("b", 0.3).remaining == 0


def test_idle_clients_are_pruned_when_full() -> None:
    store = MemoryRateLimitStore(per_minute=5, per_second=5, max_clients=2)
    store.hit("a", 0.0)
    store.hit("b", 30.0)
    store.hit("c", 61.0)  # full: "a" left the window and is dropped, "b" is kept
    assert set(store._hits) == {"b", "c"}


def test_limiter_headers() -> None:
    limiter = RateLimiter(MemoryRateLimitStore(10, 2), 10, 2)
    decision, headers = limiter.check("k", now=5.0)
    assert decision.allowed
    assert headers == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "9",
        "RateLimit-Reset": "60",
        "RateLimit-Policy": "10;w=60, 2;w=1",
    }
    limiter.check("k", now=5.1)
    decision, headers = limiter.check("k", now=5.2)
    assert not decision.allowed
    assert headers["Retry-After"] == "1"  # the burst window, not the minute
    assert headers["RateLimit-Remaining"] == "8"
    # Once the minute budget is spent, the wait is for the minute window.
    for now in (7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0, 21.0):
        assert limiter.check("k", now=now)[0].allowed
    decision, headers = limiter.check("k", now=23.0)
    assert headers["Retry-After"] == "42"  # the hit at 5.0 s leaves the window at 65.0 s
    assert headers["RateLimit-Remaining"] == "0"


# HTTP -------------------------------------------------------------------------


class FakeClock:
    """Stands in for the `time` module in api.ratelimit so windows pass without sleeping."""

    def __init__(self) -> None:
        # Later than any real reading already stored by the fixture's logins, and a whole
        # number so that window arithmetic on it is exact.
        self.now = float(math.ceil(time.monotonic()) + 1000)

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(api.ratelimit, "time", fake)
    return fake


def _check_headers(r: Any, limit: int) -> None:
    assert r.headers["RateLimit-Limit"] == str(limit)
    assert r.headers["RateLimit-Remaining"].isdigit()
    assert r.headers["RateLimit-Reset"].isdigit()
    assert "RateLimit-Policy" in r.headers


async def _rate_limited(r: Any) -> int:
    problem = await assert_problem(r, 429, "rate_limited")
    retry = r.headers["Retry-After"]
    assert retry.isdigit(), retry
    assert "retry" in problem["detail"]
    return int(retry)


@ONE_ENGINE
@pytest.mark.rate_limit(200, 20)
async def test_burst_of_21_is_refused_then_recovers(api: Api, clock: FakeClock) -> None:
    viewer = api.auth("viewer")
    for i in range(20):
        r = await api.client.get("/api/printers", headers=viewer)
        assert r.status_code == 200, i
        _check_headers(r, 200)
        assert r.headers["RateLimit-Remaining"] == str(199 - i)
    r = await api.client.get("/api/printers", headers=viewer)
    assert await _rate_limited(r) == 1
    _check_headers(r, 200)
    # Another client is not limited by the first one's usage.
    assert (await api.client.get("/api/printers", headers=api.auth("operator"))).status_code == 200
    clock.now += 1.0
    assert (await api.client.get("/api/printers", headers=viewer)).status_code == 200


@ONE_ENGINE
@pytest.mark.rate_limit(5, 100)
async def test_minute_limit_is_refused_then_recovers(api: Api, clock: FakeClock) -> None:
    viewer = api.auth("viewer")
    for i in range(5):
        clock.now += 2.0
        r = await api.client.get("/api/auth/me", headers=viewer)
        assert r.status_code == 200, i
        assert r.headers["RateLimit-Remaining"] == str(4 - i)
    clock.now += 2.0
    r = await api.client.get("/api/auth/me", headers=viewer)
    retry = await _rate_limited(r)
    assert retry == 50  # the first of the five was 10 s ago
    # Limited everywhere, for every method, before any other processing ...
    await _rate_limited(await api.client.post("/api/printers", headers=viewer, json={}))
    # ... but other users and anonymous callers keep their own budgets.
    assert (await api.client.get("/api/auth/me", headers=api.auth("admin"))).status_code == 200
    assert (await api.client.get("/api/health")).status_code == 200
    clock.now += retry - 0.5
    await _rate_limited(await api.client.get("/api/auth/me", headers=viewer))
    clock.now += 0.5
    r = await api.client.get("/api/auth/me", headers=viewer)
    assert r.status_code == 200


@ONE_ENGINE
@pytest.mark.rate_limit(3, 100)
async def test_anonymous_callers_are_limited_per_address(api: Api, clock: FakeClock) -> None:
    here = {"client": ("198.51.100.1", 1000)}
    there = {"client": ("198.51.100.2", 1000)}
    for _ in range(3):
        assert (await api.client.get("/api/health", scope_base=here)).status_code == 200
    await _rate_limited(await api.client.get("/api/health", scope_base=here))
    # Bad tokens do not buy a fresh budget: they count against the address.
    bad = {"Authorization": "Bearer not.a.token"}
    await _rate_limited(await api.client.get("/api/printers", headers=bad, scope_base=here))
    assert (await api.client.get("/api/health", scope_base=there)).status_code == 200


@ONE_ENGINE
async def test_rate_limit_is_off_without_the_marker(api: Api) -> None:
    for _ in range(25):
        r = await api.client.get("/api/health")
        assert r.status_code == 200
    assert "RateLimit-Limit" not in r.headers


def test_default_limits_match_the_contract() -> None:
    from config.loader import load

    limits = load(None, env={}).rate_limit
    assert (limits.enabled, limits.per_minute, limits.per_second) == (True, 200, 20)
