"""The CallSupervisor: one per call; starts the call's actors, takes turns, ends the call.

It owns the call's lifetime: on hang-up or failure it stops every child and
records ``CallEnded``. Decisions come from the pure ``TurnTaking`` core; this
class only routes messages and records what was decided.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.messages import (
    CallerSpeech,
    CancelReply,
    ClearPlayback,
    PlayoutPort,
    ReplyPlayed,
    StreamStopped,
    Synthesize,
)
from actors.speech_synthesis import HibariEngine
from actors.speech_turns import SpeechDetector
from actors.transport import Transport
from actors.tts import Tts
from actors.turn_taking import TurnTaking
from actors.twilio_stream import TwilioStreamProtocol
from actors.vad import SileroVadModel
from events.catalogue import (
    BargeInDetected,
    CallEnded,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    SpeechStarted,
    SpeechStopped,
)
from events.recorder import CallRecorder

log = logging.getLogger(__name__)


class CallSupervisor(pykka.ThreadingActor):
    def __init__(
        self,
        recorder: CallRecorder,
        protocol: TwilioStreamProtocol,
        playout: PlayoutPort,
        tts_engine: HibariEngine,
        vad_model: SileroVadModel,
        greeting: str,
    ) -> None:
        super().__init__()
        self.recorder = recorder
        self.protocol = protocol
        self.playout = playout
        self.tts_engine = tts_engine
        self.greeting = greeting
        self.turns = TurnTaking()
        self.detector = SpeechDetector(vad_model.stream())
        self.ended = False
        self.transport: pykka.ActorRef[Any] | None = None
        self.tts: pykka.ActorRef[Any] | None = None

    def on_start(self) -> None:
        self.transport = Transport.start(
            self.protocol, self.recorder, self.playout, self.actor_ref, self.detector
        )
        self.tts = Tts.start(self.tts_engine, self.recorder, self.transport)
        if self.greeting:
            self._say(self.greeting, reason="greeting")

    def _say(self, text: str, reason: str) -> None:
        reply_id = self.turns.start_reply()
        self.detector.agent_talking.set()
        self.recorder.record(ReplyRequested, reply_id=reply_id, reason=reason)
        self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=text)
        self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="stop")
        assert self.tts is not None
        self.tts.tell(Synthesize(reply_id, 0, text))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CallerSpeech):
            self._on_caller_speech(message)
        elif isinstance(message, ReplyPlayed):
            self.turns.reply_played(message.reply_id)
            self._agent_floor_changed()
        elif isinstance(message, StreamStopped):
            self.end(message.reason)
        elif message == "transport":
            return self.transport
        return None

    def _on_caller_speech(self, speech: CallerSpeech) -> None:
        if not speech.started:
            self.turns.caller_stopped()
            self.recorder.record(SpeechStopped, inbound_ms=speech.inbound_ms, speech_ms=0.0)
            return
        self.recorder.record(SpeechStarted, inbound_ms=speech.inbound_ms)
        barge_in = self.turns.caller_started(speech.inbound_ms)
        self._agent_floor_changed()
        if barge_in is None:
            return
        self.recorder.record(
            BargeInDetected, reply_id=barge_in.reply_id, inbound_ms=barge_in.inbound_ms
        )
        assert self.transport is not None and self.tts is not None
        self.transport.tell(ClearPlayback(barge_in.reply_id))
        self.tts.tell(CancelReply(barge_in.reply_id))

    def _agent_floor_changed(self) -> None:
        if self.turns.agent_reply is None:
            self.detector.agent_talking.clear()
        else:
            self.detector.agent_talking.set()

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.recorder.record(CallEnded, reason=reason)
        self.actor_ref.stop(block=False)

    def on_stop(self) -> None:
        for child in (self.tts, self.transport):
            if child is not None:
                child.stop(block=False)
