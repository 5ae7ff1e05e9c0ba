"""A simulated clock for property tests: actions at given times, run in time order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Schedule:
    """Each action runs with its time; ties run in the order they were set, and an
    action may set more (a timer re-arming, a frame queuing the next)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()

    def at(self, t: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._queue, (t, next(self._order), action))

    def run(self) -> None:
        """Until nothing is left to run."""
        while self._queue:
            t, _, action = heapq.heappop(self._queue)
            action(t)
