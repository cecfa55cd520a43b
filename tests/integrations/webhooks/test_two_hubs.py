"""Two hub processes sharing PostgreSQL: one delivery in flight per endpoint, none sent twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import reset_database
from tests.helpers import wait_for
from tests.integrations.conftest import outbound_hub
from tests.integrations.receiver import Receiver
from tests.integrations.webhooks.test_delivery import print_step


@pytest.fixture
def db_url(pg_url: str) -> str:
    """PostgreSQL only: several hubs share a database only there (SQLite is one process)."""
    return pg_url


async def test_two_hubs_share_an_endpoint(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    await reset_database(db_url)
    receiver.delay_s = 0.02
    async with (
        outbound_hub(db_url, tmp_path / "a", receiver) as first,
        outbound_hub(db_url, tmp_path / "b", receiver) as second,
    ):
        await first.add_webhook()
        for n in range(16):
            (first if n % 2 else second).hub.bus.publish(print_step(n))
        await wait_for(lambda: len(receiver.received) >= 16, timeout=20, what="16 events")
        await first.hub.bus.drain()
        await second.hub.bus.drain()
        # Both hubs had workers for the endpoint; the lock let one send at a time.
        await wait_for(lambda: first.hub.outbox.busy() + second.hub.outbox.busy() == 0,
                       what="both outboxes idle")  # fmt: skip
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 16 and len(set(ids)) == 16
    assert receiver.max_in_flight == 1
