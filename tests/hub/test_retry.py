"""Writes retried until the database takes them: quiet while it is away, loud for a bug."""

from __future__ import annotations

import errno
import logging

import pytest

from hub import retry


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schedule shortened; the loop is the production one."""
    monkeypatch.setattr(retry, "RETRY_S", (0.001, 0.002))


async def test_an_outage_is_one_warning_then_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        if len(tries) <= 4:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")

    caplog.set_level(logging.DEBUG, logger="hub.retry")
    await retry.until_stored("history write k1", write)
    assert len(tries) == 5
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.levelno for r in shown] == [logging.WARNING, logging.INFO]
    assert "waits for the database" in shown[0].getMessage()
    assert "stored after 4 failed tries" in shown[1].getMessage()
    assert not any(r.exc_info for r in caplog.records)


async def test_a_bug_is_logged_with_its_traceback_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("bad row")

    await retry.until_stored("notification x", write)
    assert len(tries) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


async def test_only_outages_are_retried_when_asked() -> None:
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        raise ValueError("bad row")

    with pytest.raises(ValueError):
        await retry.until_stored("filament step", write, retry_any=False)
    assert len(tries) == 1
