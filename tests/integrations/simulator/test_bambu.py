"""Bambu LAN front end, checked with an aiomqtt client and ftplib written from protocols.md."""

from __future__ import annotations

import asyncio
import ftplib
import io
import ssl
import time
import zipfile

import aiomqtt
import pytest

from hub.model import PrintState
from integrations.simulator import Fleet
from integrations.simulator.model import CANCELLED_BY_USER, RUNOUT_CODE
from tests.helpers import wait_for

from .bambu_client import BambuClient, ftps_upload
from .conftest import gcode


def project_3mf(layers: int = 10, seconds: int = 300) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        header = f"; total layer number: {layers}\n; total estimated time: {seconds}s\n"
        archive.writestr("Metadata/plate_1.gcode", header + "; total filament weight [g] : 4\n")
    return buf.getvalue()


async def test_connect_get_version_and_x1_full_reports(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="X1C", port=0)
    async with BambuClient(p, tls_client) as client:
        seq = await client.send("info", "get_version")
        reply = await wait_for(lambda: client.reply("info", seq), what="get_version reply")
        names = [m["name"] for m in reply["module"]]
        assert names[0] == "ota" and "ams/0" in names and "ams/1" in names
        assert reply["module"][0]["sn"] == p.serial
        await wait_for(lambda: len(client.reports) >= 2, what="two reports")
        for report in client.reports:
            assert report["msg"] == 0
            assert report["gcode_state"] == "IDLE"
            assert {"mc_percent", "nozzle_temper", "ams", "hms", "vt_tray", "lights_report"} <= set(
                report
            )
        assert min(client.sizes) > 8000  # X1C with two AMS units sends the whole object
        trays = client.state["ams"]["ams"][0]["tray"]
        assert len(trays) == 4 and len(trays[0]["tray_color"]) == 8


async def test_wrong_access_code_and_refused_auth(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    with pytest.raises(aiomqtt.MqttError) as refused:
        async with BambuClient(p, tls_client, password="00000000"):
            pass
    assert "authorized" in str(refused.value).lower() or "5" in str(refused.value)
    p.faults.refuse_auth(True)
    with pytest.raises(aiomqtt.MqttError):
        async with BambuClient(p, tls_client):
            pass
    p.faults.refuse_auth(False)
    async with BambuClient(p, tls_client) as client:
        await wait_for(lambda: client.reports, what="a report after auth is allowed again")


async def test_p1_partial_reports_and_pushall(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    async with BambuClient(p, tls_client) as client:
        await wait_for(lambda: len(client.reports) >= 2, what="two reports")
        partials = [r for r in client.reports if r["msg"] == 1]
        assert partials and all(len(r) < 10 for r in partials)
        assert all(
            size < 300
            for r, size in zip(client.reports, client.sizes, strict=True)
            if r["msg"] == 1
        )
        before = len(client.reports)
        await client.send("pushing", "pushall", version=1, push_target=1)
        full = await wait_for(
            lambda: next((r for r in client.reports[before:] if r["msg"] == 0), None),
            what="full report after pushall",
        )
        assert {"gcode_state", "ams", "mc_percent", "wifi_signal"} <= set(full)
        # a partial change merges into the state by tray id
        tray = p.printer.tray(1)
        assert tray is not None
        tray.grams = 100.0
        await wait_for(
            lambda: client.state["ams"]["ams"][0]["tray"][1]["remain"] == 10, what="tray remain 10%"
        )
        assert client.state["ams"]["ams"][0]["tray"][1]["tray_type"]  # kept from the full report


async def test_upload_by_ftps_and_print_to_finish(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    assert p.ftps_port
    lines, size = await asyncio.to_thread(
        ftps_upload, p.host, p.ftps_port, p.secret, "cube.3mf", project_3mf(layers=12), tls_client
    )
    assert any("cube.3mf" in line for line in lines)
    assert size == len(project_3mf(layers=12))
    async with BambuClient(p, tls_client) as client:
        seen: set[str] = set()
        seq = await client.send(
            "print",
            "project_file",
            param="Metadata/plate_1.gcode",
            url="ftp:///cube.3mf",
            subtask_name="cube",
            use_ams=True,
            ams_mapping=[2],
            task_id="0",
        )
        reply = await wait_for(lambda: client.reply("print", seq), what="project_file reply")
        assert reply["result"] == "success" and reply["url"] == "ftp:///cube.3mf"

        def finished() -> bool:
            if client.state.get("gcode_state"):
                seen.add(client.state["gcode_state"])
            return client.state.get("gcode_state") == "FINISH"

        await wait_for(finished, timeout=20, what="FINISH")
        assert {"PREPARE", "RUNNING"} & seen
        assert client.state["mc_percent"] == 100
        assert client.state["layer_num"] == client.state["total_layer_num"] == 12
        assert client.state["subtask_name"] == "cube"
        assert client.state["ams"]["tray_now"] == "2"


async def test_ftps_wrong_password(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="A1", port=0)
    assert p.ftps_port
    with pytest.raises(ftplib.error_perm, match="530"):
        await asyncio.to_thread(
            ftps_upload, p.host, p.ftps_port, "wrong", "x.gcode", b"G28\n", tls_client
        )


async def test_command_replies(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    async with BambuClient(p, tls_client) as client:

        async def ask(kind: str, command: str, **fields: object) -> dict:
            seq = await client.send(kind, command, **fields)
            return await wait_for(lambda: client.reply(kind, seq), what=f"{command} reply")

        paused = await ask("print", "pause", param="")
        assert paused["result"] == "fail" and "cannot pause" in paused["reason"]
        assert (await ask("print", "print_speed", param="3"))["result"] == "success"
        assert (await ask("print", "print_speed", param="9"))["result"] == "fail"
        assert (await ask("print", "gcode_line", param="M104 S180 \n"))["result"] == "success"
        light = await ask(
            "system",
            "ledctrl",
            led_node="chamber_light",
            led_mode="off",
            led_on_time=500,
            led_off_time=500,
            loop_times=1,
            interval_time=1000,
        )
        assert light["result"] == "success" and light["led_mode"] == "off"
        change = await ask("print", "ams_change_filament", target=1, curr_temp=220, tar_temp=220)
        assert change["result"] == "success"
        assert (await ask("print", "no_such_thing"))["result"] == "fail"
        before = len(client.reports)
        await client.send("pushing", "pushall")
        await wait_for(
            lambda: any(r["msg"] == 0 for r in client.reports[before:]), what="full report"
        )
        assert client.state["spd_lvl"] == 3
        assert client.state["spd_mag"] == 124
        assert client.state["nozzle_target_temper"] == 180
        assert {"node": "chamber_light", "mode": "off"} in client.state["lights_report"]
        assert client.state["ams"]["tray_now"] == "1"


async def test_pause_resume_stop_and_cancel_code(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="X1C", port=0)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000, layers=100))
    p.printer.start_print("long.gcode")
    async with BambuClient(p, tls_client) as client:
        seq = await client.send("print", "pause")
        assert (await wait_for(lambda: client.reply("print", seq)))["result"] == "success"
        await wait_for(lambda: client.state.get("gcode_state") == "PAUSE", what="PAUSE")
        assert client.state["stg_cur"] == 16
        seq = await client.send("print", "resume")
        assert (await wait_for(lambda: client.reply("print", seq)))["result"] == "success"
        await wait_for(
            lambda: client.state.get("gcode_state") in ("PREPARE", "RUNNING"), what="resumed"
        )
        await client.send("print", "stop", param="")
        await wait_for(
            lambda: client.state.get("print_error") == CANCELLED_BY_USER, what="cancel code"
        )
        assert client.state["gcode_state"] == "FAILED"
        await wait_for(lambda: client.state.get("print_error") == 0, what="error reset to 0")
        assert p.printer.state is PrintState.CANCELLED


async def test_fault_fail_print_hms_and_runout(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    p.printer.start_print("long.gcode")
    async with BambuClient(p, tls_client) as client:
        await wait_for(lambda: client.state.get("gcode_state") == "RUNNING", what="RUNNING")
        p.faults.runout()
        await wait_for(lambda: client.state.get("gcode_state") == "PAUSE", what="runout pause")
        assert client.state["stg_cur"] == 6
        assert {"attr": 0x07002000, "code": RUNOUT_CODE} in client.state["hms"]
        assert client.state["ams"]["ams"][0]["tray"][0]["remain"] == 0
        seq = await client.send(
            "print", "ams_change_filament", target=1, curr_temp=220, tar_temp=220
        )
        assert (await wait_for(lambda: client.reply("print", seq)))["result"] == "success"
        seq = await client.send("print", "resume")
        assert (await wait_for(lambda: client.reply("print", seq)))["result"] == "success"
        await wait_for(lambda: client.state.get("hms") == [], what="runout error cleared")
        p.faults.raise_hms(0x0300_0100, 0x0001_0007)
        await wait_for(
            lambda: client.state.get("hms") == [{"attr": 0x03000100, "code": 0x00010007}],
            what="HMS raised",
        )
        p.faults.clear_hms()
        await wait_for(lambda: client.state.get("hms") == [], what="HMS cleared")
        p.faults.fail_print(code=50364437)
        await wait_for(lambda: client.state.get("gcode_state") == "FAILED", what="FAILED")
        assert client.state["print_error"] == 50364437


async def test_fault_drop_connection_and_restart(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="A1", port=0)
    await fleet.load_file(p, "long.gcode", gcode(time_s=36000))
    p.printer.start_print("long.gcode")
    async with BambuClient(p, tls_client) as client:
        await wait_for(lambda: client.reports, what="a report")
        p.faults.drop_connection()
        await wait_for(lambda: client.closed is not None, what="client sees the drop")
    port = p.port
    restart = asyncio.create_task(p.faults.restart(delay=0.3))
    await wait_for(lambda: p.ctx.faults.restarting, what="restart begins")
    with pytest.raises(aiomqtt.MqttError):
        async with BambuClient(p, tls_client):
            pass  # nothing listens while powered off
    await restart
    assert p.port == port
    async with BambuClient(p, tls_client) as client:
        await client.send("pushing", "pushall")
        await wait_for(lambda: client.state.get("gcode_state") == "IDLE", what="idle after restart")
        assert client.state["subtask_name"] == ""
    assert p.printer.job is None and "long.gcode" in p.printer.files


async def test_fault_go_silent_and_slow(fleet: Fleet, tls_client: ssl.SSLContext):
    p = await fleet.add("bambu", model="P1S", port=0)
    async with BambuClient(p, tls_client) as client:
        await wait_for(lambda: client.reports, what="a report")
        p.faults.go_silent(True)
        count = len(client.reports)
        seq = await client.send("info", "get_version", qos=0)  # a silent broker sends no PUBACK
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wait_for(lambda: client.reply("info", seq), timeout=5), 1.5)
        assert len(client.reports) <= count + 1  # at most one already in flight
        p.faults.go_silent(False)
        await wait_for(lambda: len(client.reports) > count + 1, what="reports resume")
        p.faults.slow(0.4)
        started = time.monotonic()
        seq = await client.send("info", "get_version")
        await wait_for(lambda: client.reply("info", seq), what="slow reply")
        assert time.monotonic() - started >= 0.4


async def test_raw_mqtt_ping_keepalive_and_qos(fleet: Fleet, tls_client: ssl.SSLContext):
    """PINGREQ/PINGRESP, QoS 1 PUBACK and the 1.5 x keepalive timeout, on raw packets."""
    p = await fleet.add("bambu", model="P1P", port=0)

    def string(text: str) -> bytes:
        return len(text).to_bytes(2, "big") + text.encode()

    reader, writer = await asyncio.open_connection(p.host, p.port, ssl=tls_client)
    body = string("MQTT") + bytes([4, 0xC2]) + (1).to_bytes(2, "big") + string("raw")
    body += string("bblp") + string(p.secret)
    writer.write(bytes([0x10, len(body)]) + body)
    assert await reader.readexactly(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
    writer.write(b"\xc0\x00")
    assert await reader.readexactly(2) == b"\xd0\x00"  # PINGRESP
    publish = string(f"device/{p.serial}/request") + (7).to_bytes(2, "big") + b"{}"
    writer.write(bytes([0x32, len(publish)]) + publish)
    assert await reader.readexactly(4) == b"\x40\x02\x00\x07"  # PUBACK for packet 7
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # no more pings: the broker hangs up
    assert asyncio.get_running_loop().time() - started >= 1.0
    writer.close()
