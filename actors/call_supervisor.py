"""The CallSupervisor: one per call; starts the call's actors, takes turns, ends the call.

It owns the call's lifetime: on hang-up or failure it stops every child and
records ``CallEnded``. Decisions come from the pure ``TurnTaking`` core; this
class routes messages and records what was decided. It keeps the call's Heard
projection live (folded as events are recorded), so each reply is generated from
the Context the caller actually heard.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka

from actors.audio_retention import CallerAudioRetention
from actors.fixed_lines import FixedLines
from actors.liveness import BOUND_S, GIVE_UP_S, DeadAirWatch, GiveUp, Hold
from actors.llm import Llm, ReplyStreams
from actors.llm_endpoints import LlmEndpoints
from actors.messages import (
    CallerSpeech,
    CallerUtterance,
    CancelReply,
    CheckLiveness,
    ClearPlayback,
    GenerateReply,
    PlayoutPort,
    ReplyPlayed,
    StageError,
    StreamStopped,
    Synthesize,
    Transcribed,
)
from actors.speech_recognition import WhisperEngine
from actors.speech_synthesis import SpeechEngine
from actors.speech_turns import SpeechDetector
from actors.stt import Stt
from actors.supervised import Pulse
from actors.transport import InboundBacklog, Transport
from actors.tts import Tts
from actors.turn_taking import TranscriptGate, TurnTaking, interruption_kind
from actors.twilio_stream import TwilioStreamProtocol
from actors.vad import SileroVadModel
from events.catalogue import (
    BargeInDetected,
    CallEnded,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    SilenceFilled,
    SpeechStarted,
    SpeechStopped,
    StageCancelled,
    StageFailed,
    TranscriptFinal,
    TranscriptPartial,
    TurnNotAnswered,
)
from events.recorder import CallRecorder
from projections import heard as heard_projection
from projections.context import context_messages, to_chat

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I missed that. Could you say it again?"
ACKNOWLEDGEMENT = "Yes? Go ahead."
MAX_STAGE_FAILURES = 3  # a stage failing this often in one call ends the call
TICK_S = 0.01  # the liveness timer fires this long after the watch's due time


@dataclass(frozen=True)
class Engines:
    """The process-wide engines a call uses (loaded once, shared, bounded)."""

    tts: SpeechEngine
    vad: SileroVadModel
    stt: WhisperEngine | None = None
    llm: LlmEndpoints | None = None  # None: greet and listen only
    llm_model: str = "embedded"
    system_prompt: str = "You are a helpful phone assistant. Answer in one or two short sentences."
    max_reply_tokens: int = 80
    # How long each stage may take before it counts as stalled (handled as a failure).
    stt_timeout_s: float = 5.0
    llm_timeout_s: float = 10.0
    tts_timeout_s: float = 5.0
    # A partial transcript of a turn still going on, this often (0: none; skipped when busy).
    stt_rolling_every_ms: float = 1000.0
    # The holding and fallback lines, rendered once per process.
    fixed_lines: FixedLines = field(kw_only=True)
    # The caller hears the agent this soon after their turn (else a holding line), and
    # a reply still silent this long after the holding line is abandoned for the fallback.
    liveness_bound_s: float = BOUND_S
    liveness_give_up_s: float = GIVE_UP_S


class CallSupervisor(pykka.ThreadingActor):
    def __init__(
        self,
        recorder: CallRecorder,
        protocol: TwilioStreamProtocol,
        playout: PlayoutPort,
        engines: Engines,
        greeting: str,
        backlog: InboundBacklog,
        live: heard_projection.LiveHeard,
        retain_audio: bool = False,
        pulse: Pulse | None = None,
    ) -> None:
        super().__init__()
        self.pulse = pulse or Pulse()  # read by the gateway's watchdog
        self.backlog = backlog
        self.live = live  # the call's Heard, folded as events are recorded
        self.retain_audio = retain_audio  # the caller consented: keep their audio
        self.recorder = recorder
        self.protocol = protocol
        self.playout = playout
        self.engines = engines
        self.greeting = greeting
        self.turns = TurnTaking()
        self.transcripts: TranscriptGate[Transcribed] = TranscriptGate()
        self.detector = SpeechDetector(engines.vad.stream())
        self.streams = ReplyStreams()
        self.ended = False
        self.failures: dict[str, int] = {}
        self.apology_owed = False  # a stage failed while the caller spoke: say so when they stop
        self.transport: pykka.ActorRef[Any] | None = None
        self.tts: pykka.ActorRef[Any] | None = None
        self.stt: pykka.ActorRef[Any] | None = None
        self.llm: pykka.ActorRef[Any] | None = None
        self.watch = DeadAirWatch(engines.liveness_bound_s, engines.liveness_give_up_s)
        self.first_reply_after_turn = 0  # replies from this id on answer the watched turn
        self.timer: threading.Timer | None = None

    def on_start(self) -> None:
        retention = CallerAudioRetention(self.recorder) if self.retain_audio else None
        self.transport = Transport.start(
            self.protocol,
            self.recorder,
            self.playout,
            self.actor_ref,
            self.detector,
            self.backlog,
            retention,
            self.engines.stt_rolling_every_ms,
        )
        self._start_tts()
        self._start_stt()
        self._start_llm()
        if self.greeting:
            self._say(self.greeting, reason="greeting")

    def _start_tts(self) -> None:
        self.tts = Tts.start(
            self.engines.tts,
            self.recorder,
            self.transport,
            self.streams,
            self.actor_ref,
            self.engines.tts_timeout_s,
        )

    def _start_stt(self) -> None:
        if self.engines.stt is not None:
            self.stt = Stt.start(self.engines.stt, self.actor_ref, self.engines.stt_timeout_s)

    def _start_llm(self) -> None:
        if self.engines.llm is not None:
            self.llm = Llm.start(
                self.engines.llm,
                self.recorder,
                self.tts,
                self.actor_ref,
                self.streams,
                self.engines.max_reply_tokens,
                self.engines.llm_model,
                self.engines.llm_timeout_s,
                self.engines.liveness_bound_s,
            )

    def _restart(self, stage: str) -> None:
        """A crashed or stalled stage gets a fresh actor (its per-call state is rebuilt empty).

        A stalled one is already abandoned: it stops by itself once its engine returns."""
        if stage == "tts":
            self._start_tts()
            if self.llm is not None:  # the Llm speaks through the Tts it was given
                self.llm.stop(block=False)
                self._start_llm()
        elif stage == "stt":
            self._start_stt()
        elif stage == "llm":
            self._start_llm()

    def _start_reply(self, reason: str, caller_turn: int | None = None) -> int:
        reply_id = self.turns.start_reply()
        self.detector.agent_talking.set()
        self.recorder.record(
            ReplyRequested, reply_id=reply_id, reason=reason, caller_turn=caller_turn
        )
        return reply_id

    def _say(self, text: str, reason: str) -> None:
        """A fixed line (greeting, apology): recorded as generated, then spoken."""
        reply_id = self._start_reply(reason)
        self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=text)
        self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="stop")
        assert self.tts is not None
        self.tts.tell(Synthesize(reply_id, 0, text))

    def on_receive(self, message: Any) -> Any:
        self.pulse.beat()
        if isinstance(message, CallerSpeech):
            self._on_caller_speech(message)
        elif isinstance(message, CallerUtterance):
            if self.stt is not None:
                self.stt.tell(message)
        elif isinstance(message, Transcribed):
            self._on_transcript(message)
        elif isinstance(message, ReplyPlayed):
            self.turns.reply_played(message.reply_id)
            self._agent_floor_changed()
        elif isinstance(message, StageError):
            self._on_stage_error(message)
        elif isinstance(message, CheckLiveness):
            self._check_liveness()
        elif isinstance(message, StreamStopped):
            self.end(message.reason)
        elif message == "transport":
            return self.transport
        return None

    def _on_caller_speech(self, speech: CallerSpeech) -> None:
        if not speech.started:
            self.turns.caller_stopped()
            self.recorder.record(SpeechStopped, inbound_ms=speech.inbound_ms, speech_ms=0.0)
            if self.stt is None or self.llm is None:  # greets and listens only
                self.recorder.record(TurnNotAnswered, turn=0, reason="listening_only")
            else:
                self.watch.turn_ended(time.monotonic())
                self.first_reply_after_turn = self.turns.next_reply_id
                self._arm_liveness_timer()
            transcript = self.transcripts.turn_ended(speech.inbound_ms)
            if transcript is not None:
                self._on_final_transcript(transcript)
            elif self.apology_owed and self.turns.agent_reply is None:
                self.apology_owed = False
                self._say(APOLOGY, reason="apology")
            return
        self.recorder.record(SpeechStarted, inbound_ms=speech.inbound_ms)
        self.watch.settled()  # the caller talks again: the end of this turn re-arms it
        barge_in = self.turns.caller_started(speech.inbound_ms)
        self._agent_floor_changed()
        if barge_in is None:
            return
        self.recorder.record(
            BargeInDetected, reply_id=barge_in.reply_id, inbound_ms=barge_in.inbound_ms
        )
        assert self.transport is not None and self.tts is not None
        self.streams.cancel(barge_in.reply_id)  # LLM stream closed, queued phrases skipped
        self.transport.tell(ClearPlayback(barge_in.reply_id))
        self.tts.tell(CancelReply(barge_in.reply_id))

    def _on_transcript(self, transcript: Transcribed) -> None:
        if transcript.tentative and transcript.text.strip():
            self.recorder.record(
                TranscriptPartial,
                turn=transcript.turn,
                text=transcript.text.strip(),
                rolling=transcript.rolling,
                inbound_end_ms=transcript.inbound_end_ms,
            )
        if transcript.rolling:
            return  # the caller was still talking: never the turn's answer
        final = self.transcripts.transcribed(transcript.speech_end_ms, transcript)
        if final is not None:
            self._on_final_transcript(final)

    def _on_final_transcript(self, transcript: Transcribed) -> None:
        self.apology_owed = False
        text = transcript.text.strip()
        noise = not text or transcript.no_speech_probability > 0.8
        if not noise:
            self.recorder.record(
                TranscriptFinal,
                turn=transcript.turn,
                text=text,
                inbound_start_ms=transcript.inbound_start_ms,
                inbound_end_ms=transcript.inbound_end_ms,
            )
        interrupted = self.turns.take_interrupted()
        if self.turns.caller_speaking or self.turns.agent_reply is not None:
            return  # the caller is already talking again, or the agent already answers
        if interrupted is not None:
            kind = interruption_kind(text, transcript.no_speech_probability)
            if kind == "resume":
                self._resume(interrupted)
                return
            if kind == "acknowledge":
                self._say(ACKNOWLEDGEMENT, reason="acknowledge")
                return
        if noise or self.llm is None:  # a cough is owed no answer; with no brain, none can come
            if noise:
                self.recorder.record(TurnNotAnswered, turn=transcript.turn, reason="noise")
            self.watch.settled()
            return
        reply_id = self._start_reply("caller_turn", transcript.turn)
        self.watch.reply_requested(reply_id)
        chat = to_chat(context_messages(self.live.state), self.engines.system_prompt)
        self.llm.tell(GenerateReply(reply_id, chat))

    def _resume(self, reply_id: int) -> None:
        """Carry on from the first word the caller did not hear (the partial word included)."""
        turn = next((t for t in self.live.state.agent_turns() if t.reply_id == reply_id), None)
        if turn is None:
            return
        rest = turn.generated_text.split()[len(turn.heard_text.split()) :]
        if rest:
            self._say(" ".join(rest), reason="resume")

    def _on_stage_error(self, error: StageError) -> None:
        log.warning("call %s: %s failed: %s", self.recorder.call_sid, error.stage, error.error)
        failures = self.failures[error.stage] = self.failures.get(error.stage, 0) + 1
        # No way to hear or speak, or a stage that keeps failing: end the call, recorded.
        if error.stage == "transport" or failures >= MAX_STAGE_FAILURES:
            self.recorder.record(
                StageFailed, stage=error.stage, error=error.error[:500], action="end_call"
            )
            self.end(f"{error.stage} failed" + (f" {failures} times" if failures > 1 else ""))
            return
        reply_id = error.reply_id if error.reply_id is not None else self.turns.agent_reply
        self.recorder.record(
            StageFailed,
            stage=error.stage,
            error=error.error[:500],
            action="apologise",
            reply_id=reply_id,
        )
        if error.crashed:
            self._restart(error.stage)
        if reply_id is not None:  # the reply it was working on is lost
            self.streams.cancel(reply_id)
            self.turns.reply_played(reply_id)
            self.recorder.record(StageCancelled, stage=error.stage, reply_id=reply_id)
        if self.turns.caller_speaking:
            # Not over the caller. A lost transcript leaves their turn unanswered: apologise
            # when it ends. (A lost reply needs nothing: the caller's new turn gets one.)
            self.apology_owed = error.stage == "stt"
        elif self.turns.agent_reply is None:
            self._say(APOLOGY, reason="apology")

    def _arm_liveness_timer(self) -> None:
        due = self.watch.due_at()
        if due is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = threading.Timer(max(due - time.monotonic(), 0.0) + TICK_S, self._tick)
        self.timer.name = "liveness-timer"
        self.timer.daemon = True
        self.timer.start()

    def _tick(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # the call ended
            self.actor_ref.tell(CheckLiveness())

    def _check_liveness(self) -> None:
        """Has agent audio gone out since the caller's turn ended? If not, in time, say so."""
        if self._audio_since_turn():
            self.watch.settled()
            return
        verdict = self.watch.check(time.monotonic())
        if verdict is not None:
            log.warning(
                "call %s: no agent audio %.0f ms after the caller's turn (waiting for the %s): %s",
                self.recorder.call_sid,
                verdict.waited_ms,
                verdict.waiting_for,
                verdict.action,
            )
            self.recorder.record(
                SilenceFilled,
                action=verdict.action,
                waiting_for=verdict.waiting_for,
                waited_ms=round(verdict.waited_ms, 1),
                reply_id=verdict.reply_id,
            )
            abandoned = verdict.reply_id if isinstance(verdict, GiveUp) else None
            if abandoned is not None:
                self.streams.cancel(abandoned)
                self.turns.reply_played(abandoned)
                self.recorder.record(StageCancelled, stage="llm", reply_id=abandoned)
            hold = isinstance(verdict, Hold)
            self._say_fixed(verdict.line, reason="hold" if hold else "fallback", aside=hold)
        self._arm_liveness_timer()

    def _audio_since_turn(self) -> bool:
        """Audio of an answer went out (a holding line is not one: it only buys time)."""
        return any(
            turn.reply_id >= self.first_reply_after_turn
            and turn.out_start_ms is not None
            and turn.reason != "hold"
            for turn in self.live.state.agent_turns()
        )

    def _say_fixed(self, text: str, reason: str, *, aside: bool) -> None:
        """A line rendered once per process, queued straight into the playout: it must be
        heard even when the Tts is the stage that is late. An ``aside`` leaves the floor
        to the reply it covers for."""
        reply_id = self.turns.start_aside() if aside else self.turns.start_reply()
        self.recorder.record(ReplyRequested, reply_id=reply_id, reason=reason)
        self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=text)
        self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="stop")
        self._agent_floor_changed()
        line = self.engines.fixed_lines.get(text)
        self.playout.enqueue_phrase(reply_id, 0, text, line.mulaw, line.words, final=True)

    def _agent_floor_changed(self) -> None:
        if self.turns.agent_reply is None:
            self.detector.agent_talking.clear()
        else:
            self.detector.agent_talking.set()

    def end(self, reason: str) -> None:
        if self._record_end(reason):
            self.actor_ref.stop(block=False)

    def _record_end(self, reason: str) -> bool:
        if self.ended:
            return False
        self.ended = True
        self.watch.settled()
        if self.timer is not None:
            self.timer.cancel()
        if self.turns.agent_reply is not None:
            self.streams.cancel(self.turns.agent_reply)
        self.recorder.record(CallEnded, reason=reason)
        return True

    def on_stop(self) -> None:
        for child in (self.llm, self.stt, self.tts, self.transport):
            if child is not None:
                child.stop(block=False)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """The supervisor itself failed: nobody is left to decide, so end the call, recorded
        (pykka calls this instead of ``on_stop``; the gateway closes the stream)."""
        log.error("call %s: supervisor failed: %s", self.recorder.call_sid, repr(exception_value))
        self._record_end("supervisor failed")
        self.on_stop()
