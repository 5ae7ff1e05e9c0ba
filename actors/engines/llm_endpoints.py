"""Where a reply is generated: the least busy of the process's LLM endpoints.

The embedded llama.cpp server runs one request at a time, so a second caller's
reply waits for the whole of the first. With two servers (one thread each on
two cores) two replies are generated side by side; a request goes to the server
with the fewest requests in flight (ties: the first). vLLM batches by itself,
so in production this is one URL. Shared by every call of the process.

Work that may be skipped (a reply begun at a pause, before the turn is known to end)
is only started while an endpoint has room: ``requests_at_once`` is 1 for llama.cpp,
the batch size for vLLM. On the embedded server a speculative request would otherwise
make another call's real reply wait behind it (``bench/load.py``, 2 calls: the answer's
P95 went from 1.7 to 3.5 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LlmEndpoints:
    def __init__(self, urls: list[str], requests_at_once: int = 1) -> None:
        if not urls:
            raise ValueError("at least one LLM endpoint is needed")
        self.urls = list(urls)
        self.requests_at_once = requests_at_once
        self._in_flight = dict.fromkeys(self.urls, 0)
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[str]:
        """The least busy endpoint, counted as busy until the block ends."""
        with self._lock:
            url = min(self.urls, key=lambda u: self._in_flight[u])
            self._in_flight[url] += 1
        try:
            yield url
        finally:
            with self._lock:
                self._in_flight[url] -= 1

    def has_room(self) -> bool:
        """An endpoint would start a request now, without making another wait."""
        with self._lock:
            return min(self._in_flight.values()) < self.requests_at_once

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return dict(self._in_flight)
