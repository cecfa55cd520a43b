"""The pipelines on the hub's real scheduler: asyncio timers, no threads."""

from __future__ import annotations

import asyncio
import threading

from reactivex.disposable import CompositeDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

from hub.model import PrinterState
from streams import build_pipelines
from tests.helpers import wait_for
from tests.streams.harness import P, job, report


async def test_held_status_goes_out_on_the_event_loop() -> None:
    loop = asyncio.get_running_loop()
    telemetry: Subject[PrinterState] = Subject()
    pipes = build_pipelines(telemetry, AsyncIOScheduler(loop))
    seen: list[tuple[float, str]] = []
    threads: set[int] = set()

    def sink(state: PrinterState) -> None:
        threads.add(threading.get_ident())
        seen.append((state.job.progress if state.job else -1.0, state.state.value))

    disposables = CompositeDisposable(pipes.status.subscribe(sink), pipes.connect())
    telemetry.on_next(report(1.0, P.PRINTING, job(1.0)))
    telemetry.on_next(report(1.1, P.PRINTING, job(2.0)))
    telemetry.on_next(report(1.2, P.PRINTING, job(3.0)))
    assert seen == [(1.0, "printing")]  # the rest is held for the window's end
    await wait_for(lambda: len(seen) == 2, timeout=5.0, what="the held status")
    assert seen[-1] == (3.0, "printing")  # latest wins
    assert threads == {threading.get_ident()}  # delivered on the loop's thread
    disposables.dispose()
