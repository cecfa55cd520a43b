"""Each tray's share of a print from the AMS tray changes seen during it."""

from __future__ import annotations

import pytest

from hub.consumption import tray_shares


def test_shares_follow_the_progress_each_tray_fed() -> None:
    assert tray_shares([(0, 0.0), (1, 35.0)], 100.0) == pytest.approx({0: 0.35, 1: 0.65})
    # Back to the first tray; a cancelled print counts up to the progress it reached.
    assert tray_shares([(0, 0.0), (1, 20.0), (0, 30.0)], 50.0) == pytest.approx({0: 0.8, 1: 0.2})
    # A tray loaded before the print began (changed at 0 %) fed nothing.
    assert tray_shares([(2, 0.0), (3, 0.0)], 100.0) == {2: 0.0, 3: 1.0}


def test_unknown_or_single_tray_gives_no_shares() -> None:
    assert tray_shares(None, 100.0) is None
    assert tray_shares([(0, 0.0)], 100.0) is None
    assert tray_shares([(0, 0.0), (1, 0.0)], 0.0) is None  # nothing printed
