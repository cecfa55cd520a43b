"""Sending claimed jobs to their printers: a bounded pool of starts, file bytes kept in memory,
the `sent` marks written in batches, and the idle → start latency the dispatcher reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from hub.queue.readiness import Readiness
from hub.queue.service import QueueService
from hub.store import queue as store
from hub.store.db import held_connection
from hub.store.printers import PrinterRow
from hub.store.queue import JobRow, RunRow
from integrations.printers.base import PrintOptions, describe_error

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

# Starts under way at once (upload and start command): enough to keep a farm's uploads flowing,
# few enough that each gets the CPU for its TLS handshake instead of all timing out together.
START_CONCURRENCY = 16
FILE_CACHE_BYTES = 64 << 20  # files kept in memory for the next start of the same file
FILE_CACHE_ONE = 16 << 20  # larger files are read from disk for each start
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    float("inf"),
)  # fmt: skip


class Sending:
    """The part of the dispatcher that sends claimed runs to their printers."""

    hub: Hub
    queue: QueueService
    ready: Readiness
    runs: dict[str, RunRow]

    def _init_sending(self) -> None:
        self.sends = 0
        # Idle seen -> start command sent, seconds: cumulative counts per upper bound.
        self.latency_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        # Seconds starts held a slot (file upload and start command until the printer answers).
        self.start_s_sum = 0.0
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(START_CONCURRENCY)
        self._file_bytes: OrderedDict[str, bytes] = OrderedDict()
        self._file_bytes_size = 0
        self._sent: list[str] = []  # runs whose start went out, to be marked `sent`
        self._sent_wake = asyncio.Event()

    if TYPE_CHECKING:  # tracking.Tracking's, in the dispatcher this is mixed into

        async def start_failed(
            self, job_id: str, run_id: str, reason: str, *, refused: bool = True
        ) -> None: ...

    def send(self, job: JobRow, run: RunRow, row: PrinterRow) -> None:
        """Start sending a claimed run (it waits for a free slot of the pool)."""
        task = asyncio.create_task(self._send(job, run, row), name=f"queue-send:{row.id}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def _observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[i] += 1

    async def _read(self, job: JobRow) -> bytes:
        cached = self._file_bytes.get(job.file_id)
        if cached is not None:
            self._file_bytes.move_to_end(job.file_id)
            return cached
        data = await self.hub.files.read(self.queue.files[job.file_id])
        if len(data) <= FILE_CACHE_ONE:
            self._file_bytes[job.file_id] = data
            self._file_bytes_size += len(data)
            while self._file_bytes_size > FILE_CACHE_BYTES:
                _, dropped = self._file_bytes.popitem(last=False)
                self._file_bytes_size -= len(dropped)
        return data

    async def _send(self, job: JobRow, run: RunRow, row: PrinterRow) -> None:
        mapping = tuple(run.ams_mapping) if run.ams_mapping else None
        options = PrintOptions(
            plate=job.plate,
            use_ams=(any(t != 254 for t in mapping) if mapping else None),
            ams_mapping=mapping,
        )
        try:
            async with self._slots:
                data = await self._read(job)
                seen = self.ready.idle_seen.pop(row.id, None)
                if seen is not None:
                    self._observe_latency(time.monotonic() - seen)
                self.sends += 1
                began = time.monotonic()
                try:
                    await self.hub.manager.start_print(row.id, run.filename, data, options)
                finally:
                    self.start_s_sum += time.monotonic() - began
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            async with held_connection(self.hub.db):
                await self.start_failed(
                    job.id, run.id, f"{row.name} refused the start: {describe_error(exc)}"
                )
            return
        self._sent.append(run.id)
        self._sent_wake.set()

    async def _mark_sent(self) -> None:
        """Write `sent` on the runs whose start went out, many to a transaction."""
        async with held_connection(self.hub.db):
            while True:
                await self._sent_wake.wait()
                self._sent_wake.clear()
                ids, self._sent = self._sent, []
                try:
                    async with self.queue.lock, self.hub.emitter.batch():
                        for run_id in ids:
                            current = self.runs.get(run_id)
                            if current is not None and current.state == "claimed":
                                self.runs[run_id] = replace(current, state="sent")
                                await store.save_run(self.hub.db, self.runs[run_id])
                except Exception:
                    log.exception("marking %d run(s) sent failed", len(ids))
