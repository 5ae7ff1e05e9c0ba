"""A call's in-flight replies, shared by the actors that work on them: one neutral home.

The supervisor cancels a reply from its own thread; the Llm's HTTP stream for it
closes at once, and the Tts skips its queued phrases. Neither waits on an inbox:
the Tts's inbox is ordered, so a cancel message would wait behind the very
phrases it should stop.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class ReplyStreams:
    """The call's in-flight replies, cancellable from any thread: LLM streams are closed
    at once, and the Tts checks ``is_cancelled`` before each phrase (its inbox is ordered,
    so a CancelReply message would wait behind the phrases it should stop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, Cancellable] = {}
        self._cancelled: set[int] = set()

    def open(self, reply_id: int, stream: Cancellable) -> bool:
        with self._lock:
            if reply_id in self._cancelled:
                return False
            self._streams[reply_id] = stream
            return True

    def close(self, reply_id: int) -> None:
        with self._lock:
            self._streams.pop(reply_id, None)

    def is_cancelled(self, reply_id: int) -> bool:
        with self._lock:
            return reply_id in self._cancelled

    def cancel(self, reply_id: int) -> bool:
        """Cancel a reply's stream (now, or before it opens); True if one was running."""
        with self._lock:
            self._cancelled.add(reply_id)
            stream = self._streams.pop(reply_id, None)
        if stream is not None:
            stream.cancel()
        return stream is not None
