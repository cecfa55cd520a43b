"""The webhooks plug-in's manifest and config schema agree with the hub's configuration."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.blueprints.webhooks import URL_PATTERN
from config.loader import ConfigError, load
from hub.errors import Invalid
from hub.outbound import EVENT_TYPES, matches, valid_pattern
from hub.webhooks import check_url
from integrations.loader import read_manifest

PLUGIN = Path(__file__).parents[3] / "integrations" / "webhooks"


def test_manifest_and_config_schema_match_the_hub_config() -> None:
    manifest = read_manifest(PLUGIN, "integrations")
    assert manifest.kind == "outbound" and manifest.module == "integrations.webhooks.plugin"
    hub_schema = json.loads((PLUGIN.parents[1] / "config" / "schema.json").read_text())
    assert hub_schema["properties"][manifest.config_section] == manifest.config_schema


def test_allow_networks_from_environment() -> None:
    settings = load(None, env={"PRINTFORGE_WEBHOOKS_ALLOW_NETWORKS": "192.168.1.0/24, fd00::/8"})
    assert settings.webhooks.allow_networks == ["192.168.1.0/24", "fd00::/8"]
    with pytest.raises(
        ConfigError, match=r"webhooks\.allow_networks = '192\.168\.1': not a network"
    ):
        load(None, env={"PRINTFORGE_WEBHOOKS_ALLOW_NETWORKS": "192.168.1"})


def test_event_filters() -> None:
    assert matches(["print.*"], "print.started") and not matches(["print.*"], "printer.offline")
    assert matches(["*"], "printer.removed") and matches(["filament.low"], "filament.low")
    assert all(valid_pattern(p) for p in ["*", "print.*", "queue.job.*", "notification"])
    assert not any(valid_pattern(p) for p in ["print*", "Print.x", "a..b", "*.x", ""])
    assert all(valid_pattern(t) for t in EVENT_TYPES)


def test_bus_events_become_typed_messages() -> None:
    from hub.events import NotificationStored, QueueJobChanged, SpoolChanged
    from hub.outbound import outbound

    note = {"id": "n1", "kind": "printer_offline", "severity": "warning", "created_at": 5.0}
    items = outbound(NotificationStored("p1", note), now=9.0)
    assert [i.type for i in items] == ["notification", "printer.offline"]
    # The same stored notification always makes the same message ids (no doubles on replay).
    assert [i.id for i in items] == [i.id for i in outbound(NotificationStored("p1", note), 1.0)]
    finished = {**note, "id": "n2", "kind": "print_finished"}
    assert [i.type for i in outbound(NotificationStored("p1", finished), 9.0)] == ["notification"]
    spool = SpoolChanged("s1", "weighed", "p1", 2, 512.5, {"id": "s1"})
    (item,) = outbound(spool, 9.0)
    assert item.type == "filament.spool.weighed" and item.data["remaining_g"] == 512.5
    assert item.type in EVENT_TYPES and outbound(object(), 9.0) == []
    # A queue notification is sent as `notification` only: queue.job.* carries the job itself.
    queued = {**note, "id": "n3", "kind": "queue_job_failed"}
    assert [i.type for i in outbound(NotificationStored("p1", queued), 9.0)] == ["notification"]
    (job,) = outbound(QueueJobChanged("j1", "printing", "p1", {"id": "j1"}), 9.0)
    assert job.type == "queue.job.printing" and job.type in EVENT_TYPES
    assert job.data == {"job_id": "j1", "printer_id": "p1", "job": {"id": "j1"}}


def test_the_published_filter_enum_is_what_the_hub_takes() -> None:
    from hub.channels import CHANNEL_TYPES
    from hub.outbound import filter_entries, unmatched

    for known in (EVENT_TYPES, CHANNEL_TYPES):
        entries = filter_entries(known)
        assert {"*", "print.*"} <= set(entries) and set(known) <= set(entries)
        assert all(valid_pattern(e) and unmatched([e], known) is None for e in entries)
    # Well-formed entries outside the enum select nothing, so the hub refuses them too.
    for stray in ("print.finished.*", "a.b.*", "prints.*", "queue.job"):
        assert stray not in filter_entries(EVENT_TYPES)
        assert unmatched([stray], EVENT_TYPES) == 0


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.from_regex(URL_PATTERN))
def test_every_url_the_schema_admits_has_a_host_the_hub_can_dial(url: str) -> None:
    """The API's URL pattern is the whole format rule: check_url never refuses a URL it admits
    for its shape (only, with the default configuration, for an IP literal's range)."""
    hub = SimpleNamespace(settings=load(None, env={}))
    try:
        check_url(hub, url)  # type: ignore[arg-type]
    except Invalid as exc:
        assert exc.detail.startswith("url: ") and "allow_networks" in exc.detail, (url, exc)
