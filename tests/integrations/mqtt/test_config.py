"""`[mqtt]`: one environment variable turns it on, bad values are refused by name, and the
plug-in's own config schema is the section the configuration loader validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.loader import ConfigError, MqttSettings, load, schema
from integrations.loader import Catalog
from integrations.mqtt import plugin
from integrations.mqtt.bridge import client_options


def test_the_url_alone_turns_it_on_with_the_documented_defaults() -> None:
    settings = load(None, env={"PRINTFORGE_MQTT_URL": "mqtt://127.0.0.1:1883"}).mqtt
    assert settings == MqttSettings(url="mqtt://127.0.0.1:1883")
    assert (settings.base_topic, settings.discovery_prefix) == ("printforge", "homeassistant")
    assert settings.ha_status_topic == "homeassistant/status"
    assert settings.discovery and settings.commands and not settings.tls_insecure
    assert load(None, env={}).mqtt.url is None  # off unless asked for
    options = client_options(settings, "c", "printforge/status")
    assert (options["hostname"], options["port"], options["tls_context"]) == (
        "127.0.0.1",
        1883,
        None,
    )
    assert options["will"].payload == "offline" and options["will"].retain


def test_mqtts_uses_tls_on_8883_and_the_insecure_flag() -> None:
    secure = MqttSettings(url="mqtts://broker.lan", tls_insecure=True)
    options = client_options(secure, "c", "t")
    assert options["port"] == 8883 and options["tls_context"] is not None
    assert options["tls_context"].check_hostname is False


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("PRINTFORGE_MQTT_URL", "http://broker:1883", "mqtt.url"),
        ("PRINTFORGE_MQTT_URL", "mqtt://broker/topic", "mqtt.url"),
        ("PRINTFORGE_MQTT_BASE_TOPIC", "farm/#", "mqtt.base_topic"),
        ("PRINTFORGE_MQTT_DISCOVERY_PREFIX", "ha/", "mqtt.discovery_prefix"),
        ("PRINTFORGE_MQTT_COMMANDS", "perhaps", "mqtt.commands"),
    ],
)
def test_bad_values_are_refused_naming_the_key(name: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(None, env={name: value})


def test_the_plugin_schema_is_the_configuration_section() -> None:
    (manifest,) = [m for m in Catalog().manifests("outbound") if m.id == "mqtt"]
    assert manifest.config_section == "mqtt"
    on_disk = json.loads((Path(plugin.__file__).parent / "config_schema.json").read_text())
    assert manifest.config_schema == on_disk == schema()["properties"]["mqtt"]


async def test_without_a_url_the_plugin_runs_nothing() -> None:
    assert await plugin.setup(None, MqttSettings()) is None  # type: ignore[arg-type]
