"""Every error is an RFC 9457 problem document with a machine-readable code."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from api.registry import REGISTRY
from tests.api.conftest import Api, assert_problem
from tests.conftest import ONE_ENGINE


@ONE_ENGINE
async def test_unknown_route_is_404_problem(api: Api) -> None:
    for path in ("/api/nope", "/nothing/here", "/api/printers/x/y/z", "/api/docs/assets/nope.js"):
        problem = await assert_problem(await api.client.get(path), 404, "not_found")
        assert problem["instance"] == path
        assert problem["type"] == "urn:printforge:problem:not_found"
        assert problem["title"] == "Not Found"


@ONE_ENGINE
async def test_wrong_method_is_405_problem_with_allow(api: Api) -> None:
    r = await api.client.delete("/api/health")
    problem = await assert_problem(r, 405, "method_not_allowed")
    assert "DELETE" in problem["detail"]
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed

    r = await api.client.patch("/api/printers", headers=api.auth("admin"), json={})
    await assert_problem(r, 405, "method_not_allowed")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PATCH" not in allowed


@ONE_ENGINE
async def test_every_405_carries_allow_naming_exactly_the_paths_methods(api: Api) -> None:
    """RFC 9110: a 405 lists the methods the resource takes; a fixed sub-path such as
    /api/queue/dispatch is its own resource, not an id of /api/queue/{job_id}."""
    declared: dict[str, set[str]] = {}
    for ep in REGISTRY:
        path = ep.fill({n: "0b6f2c1e-4d3a-4e5f-8a9b-1c2d3e4f5a6b" for n in ep.path_params})
        declared.setdefault(path, set()).add(ep.method)
    for path, methods in declared.items():
        expected = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
            r = await api.client.open(path, method=method, headers=api.auth("admin"))
            await assert_problem(r, 405, "method_not_allowed")
            allowed = {m.strip() for m in r.headers["Allow"].split(",")}
            assert allowed == expected, (method, path, allowed)
        r = await api.client.options(path)
        assert {m.strip() for m in r.headers["Allow"].split(",")} == expected, path


@ONE_ENGINE
async def test_unexpected_exception_is_500_without_internals(api: Api) -> None:
    # A second app on the running hub, so a route can be added before its first request.
    app = create_app(api.hub, manage_hub=False)
    marker = "kaboom-internal-detail-91f2"

    @app.get("/api/test-explode")
    async def explode() -> str:
        raise RuntimeError(marker)

    r = await app.test_client().get("/api/test-explode")
    problem = await assert_problem(r, 500, "internal_error")
    text = await r.get_data(as_text=True)
    assert marker not in text
    assert "Traceback" not in text and "RuntimeError" not in text and ".py" not in text
    assert problem["detail"] == "the server hit an unexpected error"
    # The app keeps serving afterwards.
    assert (await app.test_client().get("/api/health")).status_code == 200


@ONE_ENGINE
async def test_invalid_json_body_is_400_problem(api: Api) -> None:
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    for raw in ("{not json", "", '{"name": "x",}', "\xff\xfe"):
        r = await api.client.post("/api/printers", headers=headers, data=raw)
        problem = await assert_problem(r, 400)
        assert problem["code"] in ("invalid_json", "bad_request"), problem
    assert api.hub.printers == {}


@ONE_ENGINE
async def test_json_of_the_wrong_shape_is_400_problem(api: Api) -> None:
    bodies: list[Any] = [[], "text", 42]
    for body in bodies:
        r = await api.client.post("/api/printers", headers=api.auth("admin"), json=body)
        problem = await assert_problem(r, 400, "validation_error")
        assert problem["errors"][0]["rule"] == "type"


@ONE_ENGINE
async def test_auth_errors_are_problems(api: Api) -> None:
    await assert_problem(await api.client.get("/api/printers"), 401, "unauthorized")
    r = await api.client.post("/api/printers", headers=api.auth("viewer"), json={})
    problem = await assert_problem(r, 403, "forbidden")
    assert "admin" in problem["detail"]


@ONE_ENGINE
async def test_success_responses_carry_nosniff(api: Api) -> None:
    r = await api.client.get("/api/health")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = await api.client.get("/api/nope")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
