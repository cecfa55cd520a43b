"""The dashboard in Debian's Chromium against a served hub and a 60x simulated fleet."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

from integrations.simulator.cli import demo_gcode
from tests.api.conftest import ADMIN_PASSWORD
from tests.browser.conftest import VIEWER_PASSWORD, Site, login, screenshot
from tests.helpers import wait_for
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.asyncio(loop_scope="module")

XSS_NAME = "<img src=x onerror=alert(1)>"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def farm(site: Site) -> AsyncIterator[Site]:
    """Two Bambu printers printing a two-hour file (two minutes at 60x), an idle Bambu and an
    idle Klipper printer, and one that is never reachable."""
    for name, model in (("Alpha", "X1C"), ("Bravo", "P1S")):
        await site.add_bambu(name, model)
        sim = site.sims[name]
        await site.fleet.load_file(sim, "bracket.gcode", demo_gcode(7200, 300, 60.0))
        sim.printer.start_print("bracket.gcode")
    await site.add_bambu(XSS_NAME, "A1")
    status, body = await site.call(
        "POST",
        "/api/printers",
        {"name": "Gone", "protocol": "octoprint", "host": "127.0.0.1", "port": 9, "api_key": "k"},
    )
    assert status == 201, body
    site.printers["Gone"] = body["id"]
    delta = await site.fleet.add("moonraker")
    status, body = await site.call(
        "POST",
        "/api/printers",
        {"name": "Delta", "protocol": "moonraker", "host": delta.host, "api_key": delta.secret},
    )
    assert status == 201, body
    site.printers["Delta"] = body["id"]
    status, body = await site.call(
        "POST", "/api/users", {"username": "vera", "password": VIEWER_PASSWORD, "role": "viewer"}
    )
    assert status == 201, body
    for name in ("Alpha", "Bravo"):
        printer_id = site.printers[name]
        await wait_for(
            lambda pid=printer_id: site.hub.printer_status(pid)["state"] == "printing",
            timeout=30,
            what=f"{name} printing",
        )
    yield site


def card(page: Any, site: Site, name: str) -> Any:
    """The overview card of a printer."""
    return page.locator(f'[data-printer="{site.printers[name]}"]')


async def percent(locator: Any) -> int:
    """The whole percent a card or detail page shows."""
    text = await locator.locator(".pct").first.text_content()
    return int(str(text).rstrip("%"))


def assert_clean(page: Any) -> None:
    """No script error, CSP violation or dialog happened on the page."""
    assert page.watch.errors == [], page.watch.errors
    assert page.watch.dialogs == [], page.watch.dialogs


async def test_an_empty_farm_says_how_to_add_printers(site: Site, page: Any) -> None:
    """Runs first in this module, before the `farm` fixture has added any printer."""
    assert not site.printers, "this test must run before the farm is set up"
    await login(page, site.base, "admin", ADMIN_PASSWORD)
    await expect(page.get_by_role("heading", name="No printers yet")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("POST /api/printers")
    await screenshot(page, "00-empty-farm")
    assert_clean(page)


async def test_security_headers_and_assets(farm: Site) -> None:
    async with farm.session.get(farm.base + "/") as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        page = await r.text()
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert '<script type="module" src="/ui/js/main.js">' in page
    async with farm.session.get(farm.base + "/ui/vendor/preact.js") as r:
        assert r.status == 200 and r.content_type == "text/javascript"
        assert "Preact 11.2.0" in (await r.text())[:200]
    async with farm.session.get(farm.base + "/ui/../api/app.py") as r:
        assert r.status == 404


async def test_login_overview_and_live_progress(farm: Site, page: Any) -> None:
    await page.goto(farm.base + "/")
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill("wrong-password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Error 401")
    await screenshot(page, "01-login-error")
    await login(page, farm.base, "admin", ADMIN_PASSWORD)

    alpha = card(page, farm, "Alpha")
    await expect(alpha.locator(".badge")).to_have_text("printing", timeout=10_000)
    await expect(alpha).to_contain_text("bracket")
    await expect(alpha.locator(".tray")).to_have_count(9)  # two AMS units + the external spool
    await expect(alpha.locator(".tray.active")).to_have_count(1)  # the one feeding the print
    await expect(alpha.locator(".tray").nth(4)).to_contain_text("AMS 2 slot 1")
    # An HMS error on the idle printer shows on its card with its code.
    farm.sims[XSS_NAME].printer.raise_hms(0x0C000300, 0x00010001)
    await expect(card(page, farm, XSS_NAME).locator(".errors")).to_contain_text(
        "0C00_0300_0001_0001", timeout=10_000
    )
    await expect(card(page, farm, "Gone").locator(".badge")).to_have_text("offline")
    await expect(card(page, farm, "Gone")).to_contain_text("last seen never")
    first = await percent(alpha)
    # The same page, no reload: the card follows the print over /ws.
    await wait_for(lambda: _rose(alpha, first), timeout=15, what="Alpha's progress rising")
    await screenshot(page, "02-farm")

    # Filters and search work on the live grid.
    await page.get_by_label("Search by name").fill("bra")
    await expect(page.locator(".grid > li")).to_have_count(1)
    await page.get_by_label("Search by name").fill("")
    await page.get_by_label("State", exact=True).select_option("offline")
    await expect(page.locator(".grid > li")).to_have_count(1)
    await expect(page.locator(".grid")).to_contain_text("Gone")
    await page.get_by_label("State", exact=True).select_option("")
    await page.get_by_label("Tag", exact=True).select_option("lab")
    await expect(page.locator(".grid > li")).to_have_count(1)
    await page.get_by_label("Tag", exact=True).select_option("")
    await page.get_by_label("Protocol", exact=True).select_option("octoprint")
    await expect(page.locator(".grid > li")).to_have_count(1)
    assert_clean(page)


async def _rose(locator: Any, first: int) -> bool:
    return await percent(locator) > first


async def test_pause_and_resume_from_the_detail_page(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Bravo").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Bravo")
    state = page.locator(".detail-head .badge")
    await expect(state).to_have_text("printing", timeout=10_000)
    await page.get_by_role("button", name="Pause").click()
    await expect(state).to_have_text("paused", timeout=10_000)
    assert farm.sims["Bravo"].printer.state.value == "paused"
    await expect(page.get_by_role("button", name="Resume")).to_be_visible()
    await screenshot(page, "03-printer-paused")
    await page.get_by_role("button", name="Resume").click()
    await expect(state).to_have_text("printing", timeout=10_000)
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    # The temperature chart has drawn lines from the live stream.
    nozzle = page.locator(".chart polyline.c1")
    await expect(nozzle).to_have_attribute("points", re.compile(r"^\S+ \S+"), timeout=10_000)
    await screenshot(page, "04-printer-detail")
    assert_clean(page)


async def test_viewer_sees_no_controls_and_the_api_refuses(farm: Site, page: Any) -> None:
    await login(page, farm.base, "vera", VIEWER_PASSWORD)
    await expect(page.get_by_role("link", name="Users")).to_have_count(0)
    await expect(page.get_by_role("link", name="Webhooks")).to_have_count(0)
    await expect(page.get_by_role("link", name="Channels")).to_have_count(0)
    await page.get_by_role("link", name="Alpha").click()
    await expect(page.locator(".detail-head .badge")).to_have_text("printing", timeout=10_000)
    await expect(page.get_by_role("heading", name="Controls")).to_have_count(0)
    await expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    await screenshot(page, "05-printer-as-viewer")
    # The page's own token, used directly: the hub refuses, whatever the page shows.
    result = await page.evaluate(
        """async (id) => {
            const token = sessionStorage.getItem("printforge.token");
            const r = await fetch(`/api/printers/${id}/command`, {method: "POST",
              headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"},
              body: JSON.stringify({command: "pause"})});
            return [r.status, (await r.json()).detail];
        }""",
        farm.printers["Alpha"],
    )
    assert result[0] == 403 and "operator" in result[1], result
    assert farm.sims["Alpha"].printer.state.value == "printing"
    await page.goto(farm.base + "/#/users")
    await expect(page.get_by_role("alert")).to_contain_text("needs the admin role")


async def test_printer_name_with_markup_shows_as_text(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    xss = card(page, farm, XSS_NAME)
    await expect(xss.get_by_role("heading")).to_have_text(XSS_NAME)
    assert await page.locator(".grid img").count() == 0
    await xss.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    assert await page.locator("main img").count() == 0
    assert_clean(page)  # no alert() ran


async def test_hub_lost_and_back_the_page_reconnects(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    alpha = card(page, farm, "Alpha")
    await expect(alpha.locator(".badge")).to_have_text("printing", timeout=10_000)
    await farm.server.stop()
    banner = page.get_by_role("alert").filter(has_text="Connection to the hub lost")
    await expect(banner).to_be_visible(timeout=10_000)
    await screenshot(page, "06-connection-lost", full_page=False)
    before = await percent(alpha)
    await farm.server.start()
    await expect(banner).to_have_count(0, timeout=15_000)
    await expect(page.locator(".dot.open")).to_have_count(1)
    # Resubscribed: live values move again without a reload.
    await wait_for(lambda: _rose(alpha, before), timeout=15, what="progress after reconnect")


async def test_revoked_session_returns_to_login(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    token = await page.evaluate("sessionStorage.getItem('printforge.token')")
    status, _ = await farm.call("POST", "/api/auth/logout", token=token)
    assert status == 204
    await expect(page.get_by_role("status")).to_contain_text("session ended", timeout=10_000)
    await expect(page.get_by_label("Username")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('printforge.token')") is None
    await screenshot(page, "07-session-ended")
    # Logging out from the page revokes the token on the hub.
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    token = await page.evaluate("sessionStorage.getItem('printforge.token')")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("status")).to_contain_text("logged out")
    status, _ = await farm.call("GET", "/api/auth/me", token=token)
    assert status == 401


async def test_notifications_and_users_pages(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Notifications").click()
    await expect(page.locator(".feed .note").first).to_be_visible(timeout=10_000)
    await expect(page.locator(".feed")).to_contain_text("Print started")
    await screenshot(page, "08-notifications")
    await page.get_by_role("button", name="Mark all read").click()
    await expect(page.locator("header .count")).to_have_count(0)
    await page.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("rowheader", name="vera")).to_be_visible()
    # A rule the API enforces comes back as the problem's detail.
    await page.get_by_label("Username").fill("bad name!")
    await page.get_by_label("Password (8+ characters)").fill("long-enough-pw")
    await page.get_by_role("button", name="Add user").click()
    await expect(page.get_by_role("alert")).to_contain_text("username")
    await screenshot(page, "09-users")


async def test_phone_width(farm: Site, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    tab = await context.new_page()
    try:
        await login(tab, farm.base, "admin", ADMIN_PASSWORD)
        await expect(card(tab, farm, "Alpha").locator(".badge")).to_have_text("printing")
        width = await tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
        await screenshot(tab, "10-farm-phone", full_page=False)
    finally:
        await context.close()


async def test_edit_a_spool_and_see_its_ledger(farm: Site, page: Any) -> None:
    status, spool = await farm.call(
        "POST",
        "/api/filaments",
        {"material": "PETG", "color": "#112233", "name": "Night blue", "weight_total_g": 1000},
    )
    assert status == 201, spool
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Filament").click()
    row = page.locator(f'[data-spool="{spool["id"]}"]')
    await expect(row).to_contain_text("1000 / 1000 g")
    await row.get_by_role("button", name="Edit").click()
    await page.get_by_label("Remaining (g)").fill("450")
    await page.get_by_label("Low below (g)").fill("500")
    await page.get_by_label("On printer").select_option(label="Alpha")
    await page.get_by_label("Tray (0 to 15 AMS, 254 external)").fill("2")
    await page.get_by_role("button", name="Save spool").click()
    await expect(page.get_by_role("status")).to_contain_text("saved")
    await expect(row).to_contain_text("450 / 1000 g")
    await expect(row).to_contain_text("low stock")
    await expect(row).to_contain_text("Alpha · AMS 1 slot 3")
    status, stored = await farm.call("GET", f"/api/filaments/{spool['id']}")
    assert stored["weight_remaining_g"] == 450 and stored["low_threshold_g"] == 500
    assert stored["material"] == "PETG" and stored["name"] == "Night blue"  # kept as shown
    assert stored["assigned_to"] == {"printer_id": farm.printers["Alpha"], "tray": 2}
    await row.get_by_role("button", name="Ledger").click()
    ledger = page.locator(".ledger")
    await expect(ledger.locator("tbody tr")).to_have_count(2)  # initial, then the correction
    await expect(ledger).to_contain_text("-550.0")
    await screenshot(page, "11-filament")
    # The spool shows on its printer's page.
    await page.goto(f"{farm.base}/#/printers/{farm.printers['Alpha']}")
    await expect(page.locator(".tray-spools")).to_contain_text("PETG, 450 g left")
    assert_clean(page)


async def test_history_lists_prints_and_exports_csv(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="History").click()
    table = page.locator("table.history")
    await expect(table).to_contain_text("Alpha", timeout=10_000)
    await expect(table).to_contain_text("bracket")
    await page.get_by_label("Printer", exact=True).select_option(label="Bravo")
    await expect(table.locator("tbody tr")).to_have_count(1)
    await page.get_by_label("Printer", exact=True).select_option("")
    await expect(page.locator(".charts svg").first).to_be_visible()
    await screenshot(page, "12-history")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export CSV").click()
    download = await info.value
    assert download.url.startswith("blob:"), "the export must not put the token in a URL"
    assert download.suggested_filename.startswith("print-history-")
    saved = Path(await download.path())
    text = await asyncio.to_thread(saved.read_text, encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("id,printer_id,printer_name,file")
    assert any("Alpha" in line and "bracket" in line for line in lines[1:]), lines
    assert_clean(page)


async def test_upload_queue_clear_the_bed_and_dispatch(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Queue").click()
    await expect(page.get_by_text("The queue is empty")).to_be_visible()
    gcode = demo_gcode(1200, 20, 4.0)
    await page.locator("#upload-input").set_input_files(
        files=[{"name": "clip.gcode", "mimeType": "text/x-gcode", "buffer": gcode}]
    )
    uploaded = page.locator(".files .file").filter(has_text="clip.gcode")
    await expect(uploaded).to_contain_text("20")  # layers, from the file's header
    await expect(uploaded).to_contain_text("20 min")
    await uploaded.get_by_role("button", name="Queue clip.gcode").click()
    # Typed before choosing the target, which re-renders the form: the value stays.
    await page.get_by_label("Priority (higher first)").fill("5")
    await page.get_by_label("Print on").select_option("printer")
    await expect(page.get_by_label("Priority (higher first)")).to_have_value("5")
    await page.get_by_label("Printer", exact=True).select_option(label="Delta")
    await page.get_by_label("Hold").check()
    await page.get_by_role("button", name="Add to queue").click()
    job = page.locator(".jobs .job-row").filter(has_text="clip.gcode")
    await expect(job.locator(".badge")).to_have_text("held")
    await job.get_by_role("button", name="Release").click()
    await expect(job.locator(".badge")).to_have_text("queued")
    # A printer the hub has not seen emptied waits for a person to confirm its bed.
    await expect(job).to_contain_text("Waiting: bed not cleared on Delta")
    await screenshot(page, "13-queue-waiting")
    await page.get_by_role("link", name="Farm").click()
    delta = card(page, farm, "Delta")
    await expect(delta).to_contain_text("Bed not cleared")
    await delta.get_by_role("link").click()
    await page.get_by_role("button", name="Bed cleared").click()
    # The dispatcher sends the job at once; the page follows over /ws.
    await expect(page.locator(".detail-head .badge")).to_have_text("printing", timeout=20_000)
    await expect(page.locator(".job .file")).to_contain_text("clip")  # as the dispatcher named it
    await page.get_by_role("link", name="Queue").click()
    await expect(job.locator(".badge")).to_have_text("printing")
    await screenshot(page, "14-queue-printing")
    status, body = await farm.call("GET", "/api/queue")
    assert status == 200 and body["items"][0]["printer_id"] == farm.printers["Delta"], body
    assert body["items"][0]["priority"] == 5, body
    assert_clean(page)


async def test_api_tokens_and_webhooks(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Tokens").click()
    await page.get_by_label("Name").fill("wall display")
    await page.get_by_label("Role").select_option("viewer")
    await page.get_by_role("button", name="Create token").click()
    secret = await page.locator(".secret-value").text_content()
    assert secret
    status, me = await farm.call("GET", "/api/auth/me", token=secret)
    assert status == 200 and me["username"] == "admin", me
    await page.get_by_role("button", name="Done").click()
    row = page.get_by_role("row").filter(has_text="wall display")
    await row.get_by_role("button", name="Revoke").click()
    await expect(row).to_have_count(0)
    status, _ = await farm.call("GET", "/api/auth/me", token=secret)
    assert status == 401

    await page.get_by_role("link", name="Webhooks").click()
    await page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    await page.get_by_role("button", name="Add webhook").click()
    # The hub's refusal (an address in a refused range) is shown as its problem detail.
    await expect(page.get_by_role("alert")).to_contain_text("url")
    await page.get_by_label("URL").fill("http://localhost:9/hook")
    await page.get_by_role("button", name="Add webhook").click()
    await expect(page.locator(".secret-value")).to_contain_text("whsec_")
    hook = page.get_by_role("row").filter(has_text="http://localhost:9/hook")
    await hook.get_by_role("button", name="Test").click()
    await expect(page.get_by_role("status").filter(has_text="Test message queued")).to_be_visible()
    await hook.get_by_role("button", name="Deliveries").click()
    await expect(page.locator("table").first).to_contain_text("webhook.test")
    await screenshot(page, "15-webhooks")


async def test_reorder_and_remove_queued_jobs(farm: Site, page: Any) -> None:
    status, files = await farm.call("GET", "/api/files")
    assert status == 200 and files["items"], "the upload test stored a file"
    file_id = files["items"][0]["id"]
    target = {"printer_id": farm.printers["Gone"]}  # never reachable: the jobs stay queued
    for priority in (0, 0):
        status, body = await farm.call(
            "POST", "/api/queue", {"file_id": file_id, "target": target, "priority": priority}
        )
        assert status == 201, body
    status, body = await farm.call("GET", "/api/queue?state=queued")
    first, second = (j["id"] for j in body["items"])
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Queue").click()
    rows = page.locator(".jobs .job-row[data-job]")
    queued = rows.filter(has=page.locator(".badge", has_text="queued"))
    await expect(queued).to_have_count(2)
    await expect(queued.first).to_have_attribute("data-job", first)
    await queued.nth(1).get_by_role("button", name="Move clip.gcode up").click()
    await expect(queued.first).to_have_attribute("data-job", second)
    status, body = await farm.call("GET", "/api/queue?state=queued")
    assert [j["id"] for j in body["items"]] == [second, first]
    for left in (1, 0):
        await queued.first.get_by_role("button", name="Remove").click()
        await expect(queued).to_have_count(left)
    assert_clean(page)


async def test_drop_a_file_and_drag_a_job_up(farm: Site, page: Any) -> None:
    await login(page, farm.base, "admin", ADMIN_PASSWORD)
    await page.get_by_role("link", name="Queue").click()
    # A real drop event carrying a File, as a desktop file manager delivers it.
    transfer = await page.evaluate_handle(
        """(text) => {
            const data = new DataTransfer();
            data.items.add(new File([text], "dropped.gcode", {type: "text/x-gcode"}));
            return data;
        }""",
        demo_gcode(600, 12, 4.0).decode(),
    )
    zone = page.locator(".drop")
    await zone.dispatch_event("dragover", {"dataTransfer": transfer})
    await expect(zone).to_have_class(re.compile(r"\bover\b"))
    await zone.dispatch_event("drop", {"dataTransfer": transfer})
    dropped = page.locator(".files .file").filter(has_text="dropped.gcode")
    await expect(dropped).to_contain_text("12")  # layers: the hub parsed the uploaded bytes
    await expect(zone).not_to_have_class(re.compile(r"\bover\b"))
    status, files = await farm.call("GET", "/api/files")
    stored = next(f for f in files["items"] if f["name"] == "dropped.gcode")

    target = {"printer_id": farm.printers["Gone"]}  # never reachable: the jobs stay queued
    ids = []
    for _ in range(3):
        status, body = await farm.call(
            "POST", "/api/queue", {"file_id": stored["id"], "target": target}
        )
        assert status == 201, body
        ids.append(body["id"])
    await page.reload()
    queued = page.locator(".jobs .job-row[data-job]").filter(
        has=page.locator(".badge", has_text="queued")
    )
    await expect(queued).to_have_count(3)
    await expect(queued.first).to_have_attribute("data-job", ids[0])
    # The mouse drags the last job onto the first: HTML5 drag events, as a person makes them.
    await queued.nth(2).drag_to(queued.first)
    await expect(queued.first).to_have_attribute("data-job", ids[2])
    status, body = await farm.call("GET", "/api/queue?state=queued")
    assert [j["id"] for j in body["items"]] == [ids[2], ids[0], ids[1]]
    for job_id in ids:
        status, _ = await farm.call("DELETE", f"/api/queue/{job_id}")
        assert status == 204
    assert_clean(page)


async def test_notification_channels_page(farm: Site, page: Any) -> None:
    receiver = await Receiver().start()
    try:
        await login(page, farm.base, "admin", ADMIN_PASSWORD)
        await page.get_by_role("link", name="Channels").click()
        await expect(page.get_by_text("No notification channels yet")).to_be_visible()
        await page.get_by_label("Name").fill("automation")
        await page.get_by_label("Apprise URL").fill("nonsense://nowhere")
        await page.get_by_role("button", name="Add channel").click()
        # The hub's refusal comes back as its problem detail, naming the field.
        await expect(page.get_by_role("alert")).to_contain_text("url")
        await expect(page.locator("table.channels")).to_have_count(0)

        url = receiver.url.replace("http://", "json://bot:s3cr3t-pass@") + "/notify"
        await page.get_by_label("Apprise URL").fill(url)
        # Only what cannot happen during the test: the farm's own notifications stay away.
        await page.get_by_label("Events (comma-separated; * for all)").fill("filament.low")
        await page.get_by_label("Minimum severity").select_option("error")
        await page.get_by_label("From").fill("22:00")
        await page.get_by_label("Until").fill("22:01")
        await page.get_by_label("Time zone").fill("Pacific/Chatham")
        await page.get_by_role("button", name="Add channel").click()
        await expect(page.get_by_role("status").filter(has_text="added")).to_be_visible()
        row = page.get_by_role("row").filter(has_text="automation")
        await expect(row).to_contain_text("JSON")
        await expect(row).to_contain_text("22:00\u201322:01 Pacific/Chatham")  # an en dash
        await expect(row).to_contain_text("filament.low")
        await expect(row.locator(".badge").first).to_have_text("error")
        assert "s3cr3t-pass" not in str(await page.locator("main").text_content())
        status, body = await farm.call("GET", "/api/notifications/channels")
        (channel,) = body["items"]
        assert channel["quiet_hours"] == {
            "start": "22:00",
            "end": "22:01",
            "timezone": "Pacific/Chatham",
        }
        assert channel["events"] == ["filament.low"] and channel["min_severity"] == "error"

        await row.get_by_role("button", name="Test").click()
        await expect(page.get_by_role("status").filter(has_text="queued")).to_be_visible()
        await wait_for(lambda: len(receiver.received) == 1, timeout=10, what="the test message")
        message = json.loads(receiver.received[0].body)
        assert message["title"] == "3DPrintForge test", message
        assert receiver.received[0].path == "/notify"

        deliveries = f"/api/notifications/channels/{channel['id']}/deliveries"

        async def delivered() -> bool:
            _, listed = await farm.call("GET", deliveries)
            return bool(listed["items"]) and listed["items"][0]["state"] == "delivered"

        await wait_for(delivered, timeout=10, what="the delivery recorded")
        await row.get_by_role("button", name="Deliveries").click()
        listed = page.locator(".deliveries tbody tr")
        await expect(listed).to_have_count(1)
        await expect(listed).to_contain_text("channel.test")
        await expect(listed.locator(".badge")).to_have_text("delivered")
        await screenshot(page, "16-channels")
        # "Send again" puts the same message out once more.
        await listed.get_by_role("button", name="Send again").click()
        await wait_for(lambda: len(receiver.received) == 2, timeout=10, what="the redelivery")
        assert json.loads(receiver.received[1].body)["title"] == "3DPrintForge test"

        await row.get_by_role("button", name="Disable").click()
        await expect(row.get_by_role("button", name="Enable")).to_be_visible()
        await expect(row).to_contain_text("disabled")
        status, body = await farm.call("GET", f"/api/notifications/channels/{channel['id']}")
        assert body["enabled"] is False
        # Changed: quiet hours removed, severity lowered; the stored URL is kept.
        await row.get_by_role("button", name="Edit").click()
        await expect(page.get_by_label("Name")).to_be_focused()
        await expect(page.get_by_label("Until")).to_have_value("22:01")
        await page.get_by_label("From").fill("")
        await page.get_by_label("Until").fill("")
        await page.get_by_label("Minimum severity").select_option("warning")
        await page.get_by_role("button", name="Save channel").click()
        await expect(page.get_by_role("status").filter(has_text="saved")).to_be_visible()
        await expect(row.locator(".badge").first).to_have_text("warning")
        status, changed = await farm.call("GET", f"/api/notifications/channels/{channel['id']}")
        assert changed["quiet_hours"] is None and changed["min_severity"] == "warning"
        assert changed["url"] == channel["url"] and changed["events"] == ["filament.low"]
        await row.get_by_role("button", name="Delete").click()
        await expect(page.get_by_text("No notification channels yet")).to_be_visible()
        await expect(page.locator(".deliveries")).to_have_count(0)
        status, _ = await farm.call("GET", f"/api/notifications/channels/{channel['id']}")
        assert status == 404
        assert_clean(page)
    finally:
        await receiver.stop()
