"""Recording a call's events: one stamper per call, shared by all of its actors.

``record`` gives each event the call's next sequence number and the call's
monotonic time, hands it to the group-commit writer (never waiting on disk) and
to live listeners (projections kept current in memory). A lock makes the
sequence order the submission order, whichever thread records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from events.catalogue import Event
from events.codec import encode
from events.group_commit import Ack, GroupCommitWriter

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


class CallRecorder:
    def __init__(
        self,
        call_sid: str,
        writer: GroupCommitWriter,
        *,
        clock: Callable[[], float] = time.monotonic,
        started_at: float | None = None,
    ) -> None:
        self.call_sid = call_sid
        self._writer = writer
        self._clock = clock
        self.t0 = clock() if started_at is None else started_at
        self._seq = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Event], None]] = []
        self.last_ack: Ack | None = None
        self.sealed = False

    def ms_at(self, t: float) -> float:
        """A monotonic time as the call's ``at_ms``."""
        return round((t - self.t0) * 1000.0, 3)

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def seal(self) -> None:
        """Nothing more is stored for this call: it was ended from outside its actors
        (a stalled supervisor), whose late events must not follow its ``CallEnded``."""
        with self._lock:
            self.sealed = True

    def record(self, kind: type[E], *, at: float | None = None, **fields: Any) -> E:
        with self._lock:
            if self.sealed:
                log.info("call %s ended: late %s not stored", self.call_sid, kind.__name__)
                return kind(call_sid=self.call_sid, seq=self._seq + 1, at_ms=0.0, **fields)
            self._seq += 1
            at_ms = self.ms_at(self._clock() if at is None else at)
            event = kind(call_sid=self.call_sid, seq=self._seq, at_ms=at_ms, **fields)
            try:
                payload = encode(event)  # a bad field fails here, in the code that built it
            except (TypeError, ValueError):
                self._seq -= 1
                raise
            ack = self._writer.submit(self.call_sid, [event], [payload])
            ack.add_done_callback(self._log_refusal)
            self.last_ack = ack
            for listener in self._listeners:
                listener(event)
        return event

    @staticmethod
    def _log_refusal(ack: Ack) -> None:
        error = ack.exception()
        if error is not None:
            log.error("event not stored: %s", error)
