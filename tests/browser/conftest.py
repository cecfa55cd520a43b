"""Browser tests: one served hub with a simulated fleet and one Chromium per test module."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig
from quart import Quart

from api.app import create_app
from api.ws import going_away
from hub.runtime import Hub
from integrations.simulator import Fleet, SimPrinter
from tests.api.conftest import ADMIN_PASSWORD, make_settings, reset_database
from tests.e2e.conftest import free_port
from tests.helpers import wait_for
from tests.integrations.printers.conftest import FAST, random_subnet

playwright_api = pytest.importorskip("playwright.async_api")
# Assertions wait up to 10 s (Playwright's default is 5): CI shares its two cores.
playwright_api.expect.set_options(timeout=10_000)

CHROMIUM = "/usr/bin/chromium"
# The folder the README names: every run leaves a picture of each page here.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWER_PASSWORD = "viewer-password-1"


def chromium_or_skip() -> str:
    """Debian's Chromium; CI must have it (.ci/run installs it), elsewhere the tests skip."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run should have installed Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return CHROMIUM


class Server:
    """The hub's app served by hypercorn on a fixed loopback port; can stop and start again."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Serve and wait until /api/health answers."""
        config = HyperConfig()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.graceful_timeout = 1
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            serve(self.app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        )
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.base}/api/health") as r:
                        return r.status == 200
                return False

            await wait_for(answers, timeout=10, interval=0.05, what="the hub answering")

    async def stop(self) -> None:
        """Close the sockets as a stopping hub does (1001), then stop serving."""
        await going_away(self.app)
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 15)
            self._task = None


@dataclass
class Site:
    """A served hub, its fleet, an admin token and the printers the module set up."""

    hub: Hub
    fleet: Fleet
    server: Server
    token: str
    session: aiohttp.ClientSession
    printers: dict[str, str] = field(default_factory=dict)  # name -> printer id
    sims: dict[str, SimPrinter] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The dashboard's URL."""
        return self.server.base

    async def call(
        self, method: str, path: str, json: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One API call (as admin unless a token is given): (status, parsed body or None)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.session.request(method, self.base + path, json=json, headers=headers) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            return r.status, body

    async def add_bambu(self, name: str, model: str) -> str:
        """A simulated Bambu printer registered under `name`; waits until it is online."""
        sim = await self.fleet.add("bambu", model=model)
        status, body = await self.call(
            "POST",
            "/api/printers",
            {
                "name": name,
                "protocol": "bambu",
                "host": sim.host,
                "serial": sim.serial,
                "access_code": sim.secret,
                "model": sim.model_name,
                "tags": ["lab"] if model == "X1C" else ["line-2"],
            },
        )
        assert status == 201, body
        printer_id: str = body["id"]
        await wait_for(
            lambda: self.hub.printer_status(printer_id)["connection"] == "online",
            timeout=30,  # generous: the machine running the suite may be busy
            what=f"{name} online",
        )
        self.printers[name] = printer_id
        self.sims[name] = sim
        return printer_id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """A hub on SQLite with a 60x fleet: printers printing, one idle, one never reachable."""
    tmp_path = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    await reset_database(db_url)
    # Channels may reach the test's receiver on loopback; webhooks keep the default refusal,
    # which the webhooks page shows.
    settings = make_settings(db_url, tmp_path, PRINTFORGE_NOTIFY_ALLOW_NETWORKS="127.0.0.0/8")
    hub = Hub(settings, driver_options=FAST)
    await hub.start()
    server = Server(create_app(hub, manage_hub=False))
    await server.start()
    try:
        async with Fleet(speed=60.0, subnet=random_subnet()) as fleet, aiohttp.ClientSession() as s:
            async with s.post(
                f"{server.base}/api/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
            ) as r:
                token = (await r.json())["token"]
            yield Site(hub, fleet, server, token, s)
    finally:
        await server.stop()
        await hub.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Debian Chromium for the whole module."""
    executable = chromium_or_skip()
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class PageWatch:
    """What a page reported: script errors, console errors and alerts (e.g. an injected one)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

        async def dismiss(dialog: Any) -> None:
            # The page's own "are you sure?" questions are answered yes; anything else (an
            # alert() that injected markup would run) is recorded.
            if dialog.type == "confirm":
                await dialog.accept()
                return
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", dismiss)

    def _console(self, message: Any) -> None:
        # An API answering 4xx is logged by the browser as a failed resource: expected when a
        # test provokes it. CSP refusals ("Refused to ...") and script errors are kept.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (own sessionStorage) and page, desktop sized."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    tab.watch = PageWatch(tab)
    yield tab
    await context.close()


async def login(page: Any, base: str, username: str, password: str) -> None:
    """Log in through the form and wait for the shell."""
    await page.goto(base + "/")
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("button", name="Log out").wait_for()


async def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Write build/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
