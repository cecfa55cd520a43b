"""Shutdown within a budget: a step that overruns is cut short and the next one still runs."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.shutdown import MIN_STEP_S, Budget


async def test_a_hanging_step_is_cut_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = Budget(0.5)
    ran: list[str] = []

    async def hang() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        ran.append("quick")

    started = time.monotonic()
    await budget.step("hanging step", hang(), 0.2)
    await budget.step("quick step", quick())
    await budget.step("second hanging step", hang())
    elapsed = time.monotonic() - started
    assert ran == ["quick"]
    assert 0.4 <= elapsed < 0.5 + MIN_STEP_S + 1.0  # the budget, plus slack for a loaded machine
    assert "hanging step took longer than 0.20 s" in caplog.text
    assert "second hanging step took longer" in caplog.text


async def test_a_failing_step_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    await Budget(1.0).step("failing step", fail())
    assert "stopping: failing step failed" in caplog.text
    assert Budget(-5.0).left() == MIN_STEP_S
