"""Queued jobs grouped by what they need, so a ready printer finds its job without walking the queue.

Jobs with the same needs (file kind, sliced model, nozzle, target, filament per slot) fit the same
printers, so matching is asked once per group, not once per job: a printer's best job is the
head (priority, position, age) of the best group it fits. Each group is a heap with lazy removal:
an entry counts only while it is the job's current one.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from hub.queue.matching import JobNeeds
from hub.store.queue import JobRow

SortKey = tuple[int, float, float, str]


@dataclass
class _Group:
    needs: JobNeeds
    heap: list[tuple[SortKey, str]] = field(default_factory=list)


def group_key(needs: JobNeeds) -> Hashable:
    """Jobs with equal keys fit exactly the same printers."""
    target = json.dumps(needs.target, sort_keys=True, default=str)
    return (needs.kind, needs.model, needs.nozzle_diameter, target, needs.needs)


class JobIndex:
    """The queued jobs by group; kept in step by every change the queue caches."""

    def __init__(self, needs: Callable[[JobRow], JobNeeds]) -> None:
        self._needs = needs
        self._groups: dict[Hashable, _Group] = {}
        self._entry: dict[str, tuple[Hashable, SortKey]] = {}  # queued job id -> its place

    def __len__(self) -> int:
        return len(self._entry)

    def update(self, job: JobRow) -> None:
        """Take a job as it now is: indexed while `queued`, dropped otherwise."""
        if job.state != "queued":
            self._entry.pop(job.id, None)
            return
        needs = self._needs(job)
        key, sort = group_key(needs), job.sort_key()
        if self._entry.get(job.id) == (key, sort):
            return
        self._entry[job.id] = (key, sort)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(needs)
        heapq.heappush(group.heap, (sort, job.id))
        if len(group.heap) > 64 and len(group.heap) > 4 * len(self._entry):
            self._compact(key, group)

    def take(self, job_id: str) -> None:
        """Leave a job out until `update` sees it queued again (chosen in this pass)."""
        self._entry.pop(job_id, None)

    def best(
        self, fits: Callable[[JobNeeds], dict[int, int] | None]
    ) -> tuple[str, dict[int, int]] | None:
        """The first job in dispatch order whose needs `fits` maps (job id, tray mapping)."""
        found: tuple[SortKey, str, dict[int, int]] | None = None
        for key, group in list(self._groups.items()):
            head = self._head(key, group)
            if head is None:
                del self._groups[key]
                continue
            if found is not None and head[0] >= found[0]:
                continue
            mapping = fits(group.needs)
            if mapping is not None:
                found = (head[0], head[1], mapping)
        return None if found is None else (found[1], found[2])

    def _head(self, key: Hashable, group: _Group) -> tuple[SortKey, str] | None:
        heap = group.heap
        while heap:
            sort, job_id = heap[0]
            if self._entry.get(job_id) == (key, sort):
                return heap[0]
            heapq.heappop(heap)
        return None

    def _compact(self, key: Hashable, group: _Group) -> None:
        group.heap = [(s, j) for s, j in group.heap if self._entry.get(j) == (key, s)]
        heapq.heapify(group.heap)
