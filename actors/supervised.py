"""A failing or stalled child actor tells its supervisor instead of dying or hanging silently.

pykka stops an actor whose ``on_receive`` raises, and says so to nobody but the
log (measured: the call just goes quiet). Each of a call's child actors mixes
this in, so the supervisor hears of the failure and decides: restart the stage
and apologise, or end the call politely.

An engine call that stalls (a hung GPU server, a wedged native library) cannot
report itself: the actor's only thread is stuck in it. ``deadline`` arms a timer
around such a call; if it fires, the supervisor is told at once (and replaces
the stage), this actor is abandoned (it skips whatever is still in its inbox
and stops as soon as the engine returns), and the late result is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import pykka

from actors.core.call_policy import Stage
from actors.messages import StageError

log = logging.getLogger(__name__)


class Pulse:
    """When an actor last took a message off its inbox, readable from any thread.

    An actor's own timers cannot tell that its thread is stuck; a watchdog outside
    it sends heartbeats and reads this: a pulse that stops while heartbeats queue
    is a stall."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def silent_for(self, now: float) -> float:
        return now - self.last


class Deadline:
    """Set once the guarded call outlived its timeout; its result must then be dropped."""

    def __init__(self) -> None:
        self.expired = False


class ReportsFailure:
    stage: Stage
    supervisor: pykka.ActorRef[Any]
    actor_ref: pykka.ActorRef[Any]
    abandoned = False  # a stage timed out: the supervisor started a replacement

    def report(self, message: object) -> None:
        """Tell the supervisor, unless the call already ended (then nobody needs to know)."""
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:
            log.debug("%s: call already ended, dropped %r", self.stage, type(message).__name__)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = repr(exception_value)  # a string: a log record must not keep the call alive
        log.error("%s actor failed: %s", self.stage, error)
        self.report(StageError(self.stage, None, error, crashed=True))

    @contextmanager
    def deadline(self, seconds: float, reply_id: int | None = None) -> Iterator[Deadline]:
        state = Deadline()

        def expire() -> None:
            state.expired = True
            self.abandoned = True
            log.error("%s stalled: no result after %.1f s", self.stage, seconds)
            self.report(
                StageError(self.stage, reply_id, f"timed out after {seconds:.1f} s", crashed=True)
            )
            self.actor_ref.stop(block=False)  # runs once the stuck call returns

        timer = threading.Timer(seconds, expire)
        timer.name = f"{self.stage}-deadline"
        timer.daemon = True
        timer.start()
        try:
            yield state
        finally:
            timer.cancel()
