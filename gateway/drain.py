"""Stopping without hanging up on anyone: the gateway's server, drained on SIGTERM.

A deploy sends SIGTERM. The gateway then stops admitting calls (the webhook answers
busy, ``/healthz`` says "draining" with 503, so a load balancer sends new callers to
another process), lets the calls in progress go on for up to ``drain_s``, then tells
each one still going to say goodbye: its supervisor stops whatever the agent was saying,
plays the goodbye (its end mark proves it was heard) and ends the call. The server
still answers for ``AFTER_STREAM_S`` more, so that Twilio's request for what follows a
closed stream (``<Connect action>``) is answered, not refused; then it stops, and
shutting down records every call's end and flushes the store. A second SIGTERM, or
SIGINT, stops at once (each call's end is still recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from types import FrameType

import pykka
import uvicorn

from actors.messages import Drain
from gateway.services import Services

log = logging.getLogger(__name__)

GOODBYE_WAIT_S = 15.0  # the goodbye is a few seconds; a caller who hung up ends sooner
AFTER_STREAM_S = 1.5  # Twilio asks <Connect action> within a moment of the stream's close


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, services: Services, drain_s: float) -> None:
        super().__init__(config)
        self.services = services
        self.drain_s = drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self.services.draining and self._loop is not None:
            self.services.draining = True
            self._loop.call_soon_threadsafe(self._begin_drain)
            return
        super().handle_exit(sig, frame)  # a second signal, or SIGINT: stop now

    def _begin_drain(self) -> None:
        self._drain = asyncio.create_task(self.drain(), name="drain")

    async def drain(self) -> None:
        services = self.services
        services.draining = True
        calls = len(services.calls_in_progress())
        log.warning("draining: %d calls in progress, %.0f s for them to end", calls, self.drain_s)
        await services.calls_ended(self.drain_s)
        remaining = services.calls_in_progress()
        if remaining:
            log.warning("draining: saying goodbye on %d calls", len(remaining))
        for supervisor in remaining:
            with contextlib.suppress(pykka.ActorDeadError):
                supervisor.tell(Drain())
        await services.calls_ended(GOODBYE_WAIT_S)
        if calls:
            await asyncio.sleep(AFTER_STREAM_S)
        log.warning("drained: stopping")
        self.should_exit = True
