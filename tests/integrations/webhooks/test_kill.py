"""A hub killed (SIGKILL) with deliveries pending loses none and sends none twice after restart."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_PASSWORD, reset_database
from tests.helpers import wait_for
from tests.integrations.conftest import FAST, outbound_hub
from tests.integrations.receiver import Receiver

REPO = Path(__file__).parents[3]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the restart test in test_delivery.py covers both engines; this one is about
    the process dying, which is the same on either."""
    return f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}"


# The first hub runs in its own process: it stores an endpoint, takes 8 events from its bus
# into the outbox, says "ready", and keeps trying to deliver until it is killed.
CHILD = """
import asyncio, os, sys
from config.loader import load
from hub.runtime import Hub
from hub.store import webhooks
from tests.integrations.webhooks.test_delivery import print_step

async def main() -> None:
    hub = Hub(load(None, env={k: v for k, v in os.environ.items() if k.startswith("PRINTFORGE_")}))
    await hub.start(drivers=False)
    hook = await webhooks.create(hub.db, {"url": sys.argv[1], "events": ["*"]})
    for n in range(8):
        hub.bus.publish(print_step(n))
    await hub.bus.drain()
    print(hook.id, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_kill_with_pending_deliveries(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    await reset_database(db_url)
    receiver.default = 503
    env = {
        **FAST,
        "PRINTFORGE_DATABASE_URL": db_url,
        "PRINTFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PRINTFORGE_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, receiver.url + "/hook",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        hook_id = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
        assert hook_id, "the first hub did not start"
        await wait_for(lambda: len(receiver.received) >= 2, what="refused attempts")
    finally:
        child.kill()
        await child.wait()
    refused = len(receiver.received)
    assert {r.headers["webhook-id"] for r in receiver.received} == {
        receiver.received[0].headers["webhook-id"]
    }, "the first hub must have retried its first message only"

    receiver.default = 200
    async with outbound_hub(db_url, tmp_path, receiver) as second:
        await wait_for(lambda: len(receiver.received) == refused + 8, timeout=15, what="8 events")

        async def all_delivered() -> bool:
            rows = await second.deliveries(hook_id, state="delivered")
            return len(rows) == 8

        await wait_for(all_delivered, what="8 delivered rows")
    accepted = receiver.received[refused:]
    assert len({r.headers["webhook-id"] for r in accepted}) == 8
    files = [json.loads(r.body)["data"]["file"] for r in accepted]
    assert files == [f"part-{n}.gcode" for n in range(8)]


# This hub stores three endpoints and a channel, then has its writers store a print step and a
# notification; an inline bus subscriber (run straight after the writer's commit, before any
# other task) kills the process once both are committed, so no plug-in ever took them from
# the bus: only rows written with them can bring them out.
CHILD_COMMIT = """
import asyncio, os, signal, sys
from config.loader import load
from hub.events import NotificationStored, PrintRecorded
from hub.model import Job
from hub.runtime import Hub
from hub.store import channels, webhooks
from streams.events import (
    LifecycleEvent, LifecycleKind, NotificationEvent, NotificationKind, Severity,
)

async def main() -> None:
    hub = Hub(load(None, env={k: v for k, v in os.environ.items() if k.startswith("PRINTFORGE_")}))
    await hub.start(drivers=False)
    url = sys.argv[1]
    ids = [
        (await webhooks.create(hub.db, {"url": url + "/prints", "events": ["print.*"]})).id,
        (await webhooks.create(hub.db, {"url": url + "/notes", "events": ["notification"]})).id,
        (await webhooks.create(hub.db, {"url": url + "/queue", "events": ["queue.*"]})).id,
        (await channels.create(hub.db, {"name": "ops", "url": url.replace("http", "json") + "/ch"})).id,
    ]
    print(" ".join(ids), flush=True)
    seen = []

    def die(event: object) -> None:
        seen.append(event)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    hub.bus.subscribe((PrintRecorded, NotificationStored), die, name="kill", inline=True)
    job = Job(file="benchy.gcode", started_at=1000.0)
    hub.bus.publish(LifecycleEvent("p1", LifecycleKind.STARTED, job, "job-1", 1000.0, 0.0))
    hub.bus.publish(NotificationEvent(
        "p1", NotificationKind.PRINTER_OFFLINE, Severity.WARNING, "p1 offline", "gone", {}, 1000.0
    ))
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_kill_right_after_the_commit(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    await reset_database(db_url)
    # Whatever the first hub manages to try before it dies is refused: nothing is delivered.
    receiver.default = 503
    env = {
        **FAST,
        "PRINTFORGE_DATABASE_URL": db_url,
        "PRINTFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PRINTFORGE_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD_COMMIT, receiver.url,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
        assert len(line) == 4, "the first hub did not start"
        assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    prints_id, notes_id, queue_id, channel_id = line
    refused = len(receiver.received)

    receiver.default = 200
    async with outbound_hub(db_url, tmp_path, receiver) as second:

        async def delivered() -> bool:
            paths = sorted(r.path for r in receiver.received[refused:])
            return paths == ["/ch", "/notes", "/prints"]

        await wait_for(delivered, timeout=15, what="one delivery per wanted target")
        rows = {
            target: await second.deliveries(target, base=base)
            for target, base in (
                (prints_id, "/api/webhooks"),
                (notes_id, "/api/webhooks"),
                (queue_id, "/api/webhooks"),
                (channel_id, "/api/notifications/channels"),
            )
        }
    assert [(d["event_type"], d["state"]) for d in rows[prints_id]] == [
        ("print.started", "delivered")
    ]
    assert [(d["event_type"], d["state"]) for d in rows[notes_id]] == [
        ("notification", "delivered")
    ]
    assert [(d["event_type"], d["state"]) for d in rows[channel_id]] == [
        ("printer.offline", "delivered")
    ]
    assert rows[queue_id] == []
    accepted = receiver.received[refused:]
    assert sorted(r.path for r in accepted) == ["/ch", "/notes", "/prints"]
    body = json.loads(next(r.body for r in accepted if r.path == "/prints"))
    assert body["data"]["file"] == "benchy.gcode"


# This hub makes one change of each kind that raises outbound events outside the print
# history: a spool created below its threshold (its event and a filament.low notification), a
# printer added, a queue notification. An inline bus subscriber kills the process as the last
# of them is published (straight after its commit), so only rows written with the changes can
# bring them out.
CHILD_CHANGES = """
import asyncio, os, signal, sys
from config.loader import load
from hub.events import NotificationStored, PrinterConfigured, SpoolChanged
from hub.runtime import Hub
from hub.store import channels, webhooks

async def main() -> None:
    hub = Hub(load(None, env={k: v for k, v in os.environ.items() if k.startswith("PRINTFORGE_")}))
    await hub.start(drivers=False)
    url = sys.argv[1]
    ids = [
        (await webhooks.create(hub.db, {"url": url + "/spools", "events": ["filament.*"]})).id,
        (await webhooks.create(hub.db, {"url": url + "/printers", "events": ["printer.*"]})).id,
        (await webhooks.create(hub.db, {"url": url + "/notes", "events": ["notification"]})).id,
        (await channels.create(hub.db, {"name": "ops", "url": url.replace("http", "json") + "/ch"})).id,
    ]
    print(" ".join(ids), flush=True)

    def die(event: object) -> None:
        if isinstance(event, NotificationStored) and event.note["kind"] == "queue_empty":
            os.kill(os.getpid(), signal.SIGKILL)

    hub.bus.subscribe((NotificationStored,), die, name="kill", inline=True)
    await hub.filament.create({"material": "PLA", "color": "#FF8800", "weight_remaining_g": 50})
    await hub.add_printer(
        {"name": "p-k", "protocol": "moonraker", "host": "127.0.0.1", "port": 9, "enabled": False}
    )
    await hub.queue.notify("queue_empty", "info", "Print queue empty", "all done", None)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_kill_right_after_queue_filament_and_printer_changes(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    await reset_database(db_url)
    receiver.default = 503
    env = {
        **FAST,
        "PRINTFORGE_DATABASE_URL": db_url,
        "PRINTFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PRINTFORGE_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD_CHANGES, receiver.url,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
        assert len(line) == 4, "the first hub did not start"
        assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    spools_id, printers_id, notes_id, channel_id = line
    refused = len(receiver.received)

    receiver.default = 200
    wanted = {"/spools": 2, "/printers": 1, "/notes": 2, "/ch": 2}
    async with outbound_hub(db_url, tmp_path, receiver) as second:

        def arrived() -> dict[str, int]:
            paths = [r.path for r in receiver.received[refused:]]
            return {path: paths.count(path) for path in wanted}

        await wait_for(lambda: arrived() == wanted, timeout=15, what="every event once")
        types = {
            target: sorted(d["event_type"] for d in await second.deliveries(target, base=base))
            for target, base in (
                (spools_id, "/api/webhooks"),
                (printers_id, "/api/webhooks"),
                (notes_id, "/api/webhooks"),
                (channel_id, "/api/notifications/channels"),
            )
        }
    assert types == {
        spools_id: ["filament.low", "filament.spool.created"],
        printers_id: ["printer.added"],
        notes_id: ["notification", "notification"],
        channel_id: ["filament.low", "queue.empty"],
    }
    assert arrived() == wanted
