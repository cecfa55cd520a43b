"""Print files over the API: multipart and raw uploads, dedupe, metadata, limits, delete."""

from __future__ import annotations

from pathlib import Path

from hub.slicer_meta import PNG_MAGIC
from tests.api.conftest import Api, assert_problem, make_settings, reset_database, running_app
from tests.slicer_files import bambu_3mf, cura_gcode, prusaslicer_gcode

BOUNDARY = "pf-test-boundary"


def multipart(name: str, data: bytes, field: str = "file") -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body holding one file part (plus a plain field before it)."""
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def test_upload_multipart_and_raw_dedupe(api: Api, tmp_path: Path) -> None:
    data = bambu_3mf(plates=((("PLA", "#FFFFFF", 11.86), ("PETG", "#1E90FF", 3.0)),))
    body, headers = multipart("benchy.gcode.3mf", data)
    r = await api.client.post("/api/files", data=body, headers={**headers, **api.auth("operator")})
    assert r.status_code == 201, await r.get_data(as_text=True)
    first = await r.get_json()
    assert first["name"] == "benchy.gcode.3mf" and first["kind"] == "3mf"
    assert first["size"] == len(data) and first["uploaded_by"] == "operator"
    meta = first["metadata"]
    assert meta["printer_model"] == "X1C" and meta["plate_count"] == 1
    assert [m["material"] for m in meta["materials"]] == ["PLA", "PETG"]
    stored = list((tmp_path / "data" / "files").glob(f"{first['sha256']}*"))
    assert len(stored) == 2  # the file and its thumbnail, nothing else left behind
    # The same bytes again, raw this time: the same file, answered 200.
    r = await api.client.post(
        "/api/files?filename=again.gcode.3mf", data=data, headers=api.auth("operator")
    )
    assert r.status_code == 200
    assert (await r.get_json())["id"] == first["id"]
    r = await api.client.get(f"/api/files/{first['id']}/thumbnail", headers=api.auth("viewer"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert (await r.get_data()).startswith(PNG_MAGIC)
    r = await api.client.get("/api/files", headers=api.auth("viewer"))
    listing = await r.get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == first["id"]


async def test_gcode_upload_missing_fields_null(api: Api) -> None:
    r = await api.client.post(
        "/api/files?filename=part.gcode", data=cura_gcode(), headers=api.auth("operator")
    )
    assert r.status_code == 201
    row = await r.get_json()
    assert row["metadata"]["grams"] is None and row["metadata"]["materials"] == []
    assert row["thumbnail_url"] is None
    r = await api.client.get(f"/api/files/{row['id']}/thumbnail", headers=api.auth("viewer"))
    await assert_problem(r, 404)
    r = await api.client.post(
        "/api/files?filename=p.gcode", data=prusaslicer_gcode(), headers=api.auth("operator")
    )
    assert (await r.get_json())["metadata"]["materials"][0]["color"] == "#FF8000"


async def test_bad_uploads_change_nothing(api: Api) -> None:
    op = api.auth("operator")
    # Not a print file (by name, or by content): 415; no name for a raw body: 400.
    cases = [
        ("/api/files?filename=model.stl", b"solid x", 415, "filename", "type"),
        ("/api/files?filename=photo.png", b"\x89PNG\r\n\x1a\n", 415, "filename", "type"),
        ("/api/files?filename=broken.3mf", b"not a zip", 415, "file", "type"),
        ("/api/files?filename=x.gcode", b"\x00\x01\x02binary", 415, "file", "type"),
        ("/api/files?filename=%20%20", b"G28\n", 415, "filename", "type"),
        ("/api/files?filename=a%16b.gcode", b"G28\n", 400, "filename", "pattern"),
        ("/api/files", b"G28\n", 400, "filename", "required"),
    ]
    for url, data, status, field, rule in cases:
        body = await assert_problem(await api.client.post(url, data=data, headers=op), status)
        assert (body["errors"][0]["field"], body["errors"][0]["rule"]) == (field, rule), body
    body, headers = multipart("file.png", b"\x89PNG\r\n\x1a\n")
    r = await api.client.post("/api/files", data=body, headers={**headers, **op})
    await assert_problem(r, 415, "unsupported_file_type")
    body, headers = multipart("x.gcode", b"G28\n", field="other")
    r = await api.client.post("/api/files", data=body, headers={**headers, **op})
    assert (await assert_problem(r, 400))["errors"][0]["field"] == "file"
    r = await api.client.post(
        "/api/files?filename=x.gcode", data=b"G28\n", headers=api.auth("viewer")
    )
    await assert_problem(r, 403)
    r = await api.client.get("/api/files", headers=op)
    assert (await r.get_json())["total"] == 0
    files_dir = Path(api.hub.settings.data_dir) / "files"
    assert not files_dir.exists() or list(files_dir.iterdir()) == []


async def test_delete_file(api: Api) -> None:
    r = await api.client.post(
        "/api/files?filename=p.gcode", data=prusaslicer_gcode(), headers=api.auth("operator")
    )
    row = await r.get_json()
    r = await api.client.delete(f"/api/files/{row['id']}", headers=api.auth("operator"))
    assert r.status_code == 204
    r = await api.client.get(f"/api/files/{row['id']}", headers=api.auth("viewer"))
    await assert_problem(r, 404)
    assert list((Path(api.hub.settings.data_dir) / "files").iterdir()) == []


async def test_size_limit_413(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}"
    await reset_database(url)
    settings = make_settings(url, tmp_path, PRINTFORGE_FILES_MAX_SIZE_MB="1")
    async with running_app(settings) as (_, app):
        client = app.test_client()
        r = await client.post(
            "/api/auth/login", json={"username": "admin", "password": "admin-password-1"}
        )
        auth = {"Authorization": f"Bearer {(await r.get_json())['token']}"}
        big = prusaslicer_gcode() + b"G1 X1\n" * 200_000  # 1.2 MB
        r = await client.post("/api/files?filename=big.gcode", data=big, headers=auth)
        await assert_problem(r, 413)
        body, headers = multipart("big.gcode", big)
        r = await client.post("/api/files", data=body, headers={**headers, **auth})
        await assert_problem(r, 413)
        small = prusaslicer_gcode()
        r = await client.post("/api/files?filename=ok.gcode", data=small, headers=auth)
        assert r.status_code == 201
