"""A call's last resort: its supervisor stuck, the gateway says goodbye and ends the call.

Every decision of a call is its supervisor's, so a supervisor whose thread is stuck
(a handler that blocks) leaves the caller in silence for as long as it stays stuck:
its own liveness timer only sends it a message it cannot read. This watchdog runs
on the gateway's loop beside the call. It sends a heartbeat every
``HEARTBEAT_S``; a supervisor that has taken no message off its inbox for
``stall_s`` is stalled. Then the watchdog records why, plays a goodbye rendered
once per process straight into the playout (heard in full: its end mark proves
it), records ``CallEnded``, seals the record (the stuck supervisor's late events
must not follow it) and hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pykka

from actors.call_supervisor import record_line
from actors.engines.fixed_lines import RenderedLine
from actors.messages import Heartbeat
from actors.supervised import Pulse
from events.catalogue import (
    CallEnded,
    StageFailed,
)
from events.recorder import CallRecorder
from gateway.playout import Playout
from projections.heard import LiveHeard

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.5
STALL_S = 3.0  # no message handled for this long, heartbeats queued: the supervisor is stuck


class SupervisorWatchdog:
    def __init__(
        self,
        supervisor: pykka.ActorRef[Any],
        pulse: Pulse,
        recorder: CallRecorder,
        playout: Playout,
        live: LiveHeard,
        goodbye: RenderedLine,
        stall_s: float = STALL_S,
    ) -> None:
        self.supervisor = supervisor
        self.pulse = pulse
        self.recorder = recorder
        self.playout = playout
        self.live = live
        self.goodbye = goodbye
        self.stall_s = stall_s
        self._goodbye_id: int | None = None
        self._goodbye_played = asyncio.Event()
        self.ending = False  # it is ending the call: let it finish recording the end

    def caller_gone(self) -> None:
        """The stream closed: no goodbye echo will come, record the end now."""
        self._goodbye_played.set()

    def reply_played(self, reply_id: int) -> bool:
        """The playout's word that a reply was heard in full; True if it was the goodbye."""
        if reply_id != self._goodbye_id:
            return False
        self._goodbye_played.set()
        return True

    async def run(self) -> None:
        """Until the call ends; if the supervisor stalls, end the call in its place."""
        while not self.playout.closed:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                self.supervisor.tell(Heartbeat())
            except pykka.ActorDeadError:
                return  # the call ended its own way
            silent_s = self.pulse.silent_for(time.monotonic())
            if silent_s > self.stall_s and not self.recorder.sealed:
                await self._end_call(silent_s)
                return

    async def _end_call(self, silent_s: float) -> None:
        self.ending = True
        log.error(
            "call %s: supervisor stalled (no message handled for %.1f s): ending the call",
            self.recorder.call_sid,
            silent_s,
        )
        record = self.recorder.record
        record(
            StageFailed,
            stage="supervisor",
            error=f"stalled: no message handled for {silent_s:.1f} s",
            action="end_call",
        )
        # The stuck supervisor starts no reply, so the next id is free.
        reply_id = max((t.reply_id for t in self.live.state.agent_turns()), default=0) + 1
        self._goodbye_id = reply_id
        line = self.goodbye
        record_line(self.recorder, reply_id, "goodbye", line.text)
        self.playout.enqueue_phrase(reply_id, 0, line.text, line.mulaw, line.words, final=True)
        with contextlib.suppress(TimeoutError):  # the caller hung up, or the echo was lost
            await asyncio.wait_for(self._goodbye_played.wait(), timeout=line.audio_s + 3.0)
        record(CallEnded, reason="supervisor stalled")
        self.recorder.seal()
        self.supervisor.stop(block=False)  # runs once (if ever) its thread returns
        self.playout.close(1000, "call ended")
