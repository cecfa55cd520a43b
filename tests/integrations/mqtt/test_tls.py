"""`mqtts://`: the hub verifies the broker's certificate against `tls_ca`, through a
TLS-terminating proxy in front of the real Mosquitto (`tls_insecure` is covered in
test_config.py)."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import pytest

from hub.runtime import Hub
from hub.tls import ensure_certificate
from tests.api.conftest import reset_database
from tests.helpers import wait_for
from tests.integrations.mqtt.conftest import TcpProxy, clear_retained, mqtt_settings, watching


async def _run(tmp_path: Path, proxy: TcpProxy, name: str, **env: str) -> tuple[Hub, str]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    await reset_database(db_url)
    base = f"pftest-{uuid.uuid4().hex[:10]}"
    settings = mqtt_settings(
        db_url, tmp_path / name, proxy.port, base, f"ha-{base}", scheme="mqtts", **env
    )
    hub = Hub(settings)
    await hub.start()
    return hub, base


async def test_mqtts_verifies_the_broker_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = ensure_certificate(tmp_path / "broker")  # self-signed for 127.0.0.1
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    proxy = TcpProxy(tls=context)
    await proxy.up()
    try:
        trusted, base = await _run(tmp_path, proxy, "trusted", PRINTFORGE_MQTT_TLS_CA=str(cert))
        try:
            async with watching(f"{base}/#") as watcher:
                await wait_for(lambda: watcher.last(f"{base}/status") == b"online", what="online")
        finally:
            await trusted.stop()
            await clear_retained(base)

        # Without the CA the self-signed certificate is refused, saying why, and retried.
        untrusted, base = await _run(tmp_path, proxy, "untrusted")
        try:

            def refusals() -> int:
                return sum("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)

            await wait_for(lambda: refusals() >= 2, what="refused handshakes")
            async with watching(f"{base}/#") as watcher:
                assert watcher.last(f"{base}/status") is None
        finally:
            await untrusted.stop()

    finally:
        await proxy.down()
