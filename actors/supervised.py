"""A failing child actor tells its supervisor instead of dying silently.

pykka stops an actor whose ``on_receive`` raises, and says so to nobody but the
log (measured: the call just goes quiet). Each of a call's child actors mixes
this in, so the supervisor hears of the failure and decides: restart the stage
and apologise, or end the call politely.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import pykka

from actors.messages import StageError

log = logging.getLogger(__name__)


class ReportsFailure:
    stage: str
    supervisor: pykka.ActorRef[Any]

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        log.error("%s actor failed: %r", self.stage, exception_value)
        if self.supervisor.is_alive():
            self.supervisor.tell(StageError(self.stage, None, repr(exception_value), crashed=True))
