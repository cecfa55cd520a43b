"""Command parameter validation and state preconditions."""

from __future__ import annotations

import pytest

from hub.model import PrintState
from integrations.printers.backoff import Backoff
from integrations.printers.commands import InvalidParams, state_refusal, validate_params


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("light", {"on": True}, {"on": True}),
        ("speed", {"level": 4}, {"level": 4}),
        ("gcode", {"line": " G28 \n"}, {"line": "G28"}),
        ("ams_change", {"tray": 254}, {"tray": 254}),
        ("set_temperature", {"heater": "bed", "target": 60}, {"heater": "bed", "target": 60.0}),
        ("pause", None, {}),
    ],
)
def test_valid_params(name, params, expected):
    assert validate_params(name, params) == expected


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("light", {"on": "yes"}, "'on'"),
        ("speed", {"level": 5}, "'level'"),
        ("speed", {"level": True}, "'level'"),
        ("gcode", {"line": "  "}, "'line'"),
        ("ams_change", {"tray": 40}, "'tray'"),
        ("set_temperature", {"heater": "chamber", "target": 40}, "'heater'"),
        ("set_temperature", {"heater": "nozzle", "target": 2100}, "'target'"),
        ("set_temperature", {"heater": "nozzle", "target": float("nan")}, "'target'"),
    ],
)
def test_invalid_params_name_the_field(name, params, field):
    with pytest.raises(InvalidParams, match=field):
        validate_params(name, params)


def test_state_preconditions():
    assert state_refusal("pause", PrintState.PRINTING) is None
    assert state_refusal("pause", PrintState.IDLE) == "it is idle, not printing"
    assert state_refusal("resume", PrintState.PRINTING) == "it is printing, not paused"
    assert state_refusal("stop", PrintState.PAUSED) is None
    assert state_refusal("stop", PrintState.FINISHED) is not None
    assert "disturb" in (state_refusal("home", PrintState.PRINTING) or "")
    assert state_refusal("home", PrintState.IDLE) is None
    assert state_refusal("ams_change", PrintState.PAUSED) is None
    assert state_refusal("gcode", PrintState.PRINTING) is None


def test_backoff_doubles_to_the_cap_with_full_jitter():
    backoff = Backoff(1.0, 30.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1.0
    low = Backoff(1.0, 30.0, rand=lambda: 0.0)
    assert low.next_delay() == 0.0
    assert Backoff(1.0, 30.0, rand=lambda: 0.5).spread(300) == 225.0
    big = Backoff(1.0, 30.0, rand=lambda: 1.0)
    big.attempt = 10_000
    assert big.next_delay() == 30.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_backoff_after_a_flap_never_drops_below_half_the_cap():
    low = Backoff(1.0, 30.0, rand=lambda: 0.0)
    assert [low.next_delay(at_least_half=True) for _ in range(7)] == [
        0.5, 1, 2, 4, 8, 15, 15
    ]  # fmt: skip
    assert Backoff(1.0, 30.0, rand=lambda: 1.0).next_delay(at_least_half=True) == 1.0
