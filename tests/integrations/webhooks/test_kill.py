"""A hub killed (SIGKILL) with deliveries pending loses none and sends none twice after restart."""

from __future__ import annotations

import asyncio
import json
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
    db_url: str, tmp_path: Path, receiver: Receiver, fast_hashing: None
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
