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


class _Gate:
    def __init__(self) -> None:
        self.opened = threading.Event()
        self.released = False
        self.reading: Cancellable | None = None  # the stream read ahead meanwhile


class ReplyHolds:
    """Speculative replies waiting for their turn to be confirmed: the Llm sends the
    request at once (the server starts thinking) and reads no further than the first
    phrase until ``release``; ``drop`` (the caller went on) wakes it to abandon the
    reply unheard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[int, _Gate] = {}

    def hold(self, reply_id: int) -> None:
        with self._lock:
            self._gates[reply_id] = _Gate()

    def read_ahead(self, reply_id: int, stream: Cancellable) -> bool:
        """May the Llm read ``stream`` while the turn is confirmed? True while it is still
        held; a drop then cancels the stream, so a read blocked on a slow server ends at
        once. False once settled (a dropped reply's stream is cancelled now)."""
        with self._lock:
            gate = self._gates.get(reply_id)
            if gate is None:
                return False
            if not gate.opened.is_set():
                gate.reading = stream
                return True
            dropped = not gate.released
        if dropped:
            stream.cancel()
        return False

    def settled(self, reply_id: int) -> bool:
        """Released or dropped (or never held): nothing more to wait for."""
        with self._lock:
            gate = self._gates.get(reply_id)
            return gate is None or gate.opened.is_set()

    def release(self, reply_id: int) -> None:
        self._open(reply_id, released=True)

    def drop(self, reply_id: int) -> None:
        self._open(reply_id, released=False)

    def wait(self, reply_id: int, timeout_s: float) -> bool:
        """Block until the reply is released (True) or dropped, or ``timeout_s`` passes."""
        with self._lock:
            gate = self._gates.get(reply_id)
        if gate is None:
            return True  # never held
        gate.opened.wait(timeout_s)
        with self._lock:
            self._gates.pop(reply_id, None)
            return gate.released

    def _open(self, reply_id: int, *, released: bool) -> None:
        with self._lock:
            gate = self._gates.get(reply_id)
            if gate is None:
                return
            gate.released = released
            gate.opened.set()
            reading = None if released else gate.reading
        if reading is not None:
            reading.cancel()
