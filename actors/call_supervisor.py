"""The CallSupervisor: one per call; starts the call's actors, routes, records, ends the call.

It owns the call's lifetime: on hang-up or failure it stops every child and
records ``CallEnded``. Every decision comes from the pure ``CallPolicy``; this
class feeds it what happened and carries out the actions it returns. It keeps
the call's Heard projection live (folded as events are recorded), so each reply
is generated from the Context the caller actually heard.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pykka

from actors.audio_retention import CallerAudioRetention, RecordingConsent
from actors.core.agent import Agent
from actors.core.call_policy import (
    LIMIT_NOTICE_S,
    Action,
    Adopt,
    CallPolicy,
    EndCall,
    Generate,
    Record,
    Restart,
    Say,
    Speculate,
    Stage,
    StopReply,
    Transcribed,
    WaitLonger,
)
from actors.core.liveness import Quiet
from actors.core.speech_turns import SpeechTurns
from actors.core.tool_due import due_tool
from actors.core.twilio_stream import TwilioStreamProtocol
from actors.engines.fixed_lines import FixedLines
from actors.engines.llm_endpoints import LlmEndpoints
from actors.engines.speech_recognition import WhisperEngine
from actors.engines.speech_synthesis import SpeechEngine
from actors.engines.vad import SileroVadModel
from actors.llm import Llm
from actors.messages import (
    CallerResumed,
    CallerSpeech,
    CallerUtterance,
    CallTimeLimit,
    CancelReply,
    CheckLiveness,
    Drain,
    GenerateReply,
    KeyPressed,
    ModelAction,
    PlayoutPort,
    ReplyPlayed,
    StageError,
    StreamStopped,
    Synthesize,
)
from actors.reply_streams import ReplyHolds, ReplyStreams
from actors.speech_detector import SpeechDetector
from actors.stt import Stt
from actors.supervised import Pulse
from actors.tool_use import Tools, ToolUse
from actors.transport import InboundBacklog, Transport
from actors.tts import Tts
from events.catalogue import (
    CallEnded,
    RecordingStarted,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    SilenceFilled,
    TranscriptFinal,
)
from events.recorder import CallRecorder
from projections import heard as heard_projection
from projections.context import context_messages, to_chat
from projections.liveness import LiveLiveness
from projections.metrics import ANSWER_REASON

log = logging.getLogger(__name__)

TICK_S = 0.01  # the liveness timer fires this long after the watch's due time


def _answers(transcript: Transcribed, utterance: CallerUtterance) -> bool:
    return (transcript.turn, transcript.tentative, transcript.speech_end_ms) == (
        utterance.turn,
        utterance.tentative,
        utterance.speech_end_ms,
    )


def record_line(recorder: CallRecorder, reply_id: int, reason: str, text: str) -> None:
    """A fixed line the agent says (greeting, apology, goodbye…), recorded as a reply
    generated whole, so Heard and Context treat it as any other."""
    recorder.record(ReplyRequested, reply_id=reply_id, reason=reason)
    recorder.record(ReplyTextGenerated, reply_id=reply_id, text=text)
    recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="stop")


@dataclass(frozen=True, kw_only=True)
class Engines:
    """The process-wide engines a call uses (loaded once, shared, bounded), and the call
    settings that go with them: all passed by keyword, from the gateway's one ``Settings``
    (no defaults here, so there is one place each value is decided)."""

    tts: SpeechEngine
    vad: SileroVadModel
    stt: WhisperEngine | None  # None (and llm None): greet and listen only
    llm: LlmEndpoints | None
    fixed_lines: FixedLines  # the holding, fallback and goodbye lines, rendered once
    llm_model: str
    agent: Agent  # the persona, its lines, silences, keys and transfer targets, its call limit
    tools: Tools | None  # the agent's tools and the pool that runs them (None: no tools)
    max_reply_tokens: int
    context_budget_tokens: int  # the conversation shown to the LLM is kept within this
    # How long each stage may take before it counts as stalled (handled as a failure).
    stt_timeout_s: float
    llm_timeout_s: float
    tts_timeout_s: float
    # A partial transcript of a turn still going on, this often (0: none; skipped when busy).
    stt_rolling_every_ms: float
    preemptive: bool  # start the reply at the pause that may end a turn
    end_of_turn_ms: float  # the caller's silence that ends their turn
    # The caller hears the agent this soon after their turn (else a holding line), and
    # a reply still silent this long after the holding line is abandoned for the fallback.
    liveness_bound_s: float
    liveness_give_up_s: float

    def filler_speech_s(self) -> float:
        """How long the agent's filler sounds (0: it has none)."""
        agent = self.agent
        if not agent.filler or agent.filler_after_s <= 0:
            return 0.0
        return self.fixed_lines.get(agent.filler).speech_s


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
        consent: RecordingConsent | None = None,
        pulse: Pulse | None = None,
    ) -> None:
        super().__init__()
        self.pulse = pulse or Pulse()  # read by the gateway's watchdog
        self.backlog = backlog
        self.live = live  # the call's Heard, folded as events are recorded
        # Its Liveness too: an answer that went quiet is watched from its first sound.
        self.liveness = LiveLiveness(on_sounding=self._tick)
        self.consent = consent  # None: nothing is kept; else once the announcement is heard
        self.consent_refused = False  # the caller cut in before hearing it: nothing is kept
        self.recorder = recorder
        self.protocol = protocol
        self.playout = playout
        self.engines = engines
        self.greeting = greeting
        self.policy = CallPolicy(
            converses=engines.stt is not None and engines.llm is not None,
            preemptive=engines.preemptive,
            bound_s=engines.liveness_bound_s,
            give_up_s=engines.liveness_give_up_s,
            agent=engines.agent,
            filler_speech_s=engines.filler_speech_s(),
        )
        turns = SpeechTurns(end_of_turn_ms=engines.end_of_turn_ms)
        self.detector = SpeechDetector(engines.vad.stream(), turns)
        self.streams = ReplyStreams()
        self.holds = ReplyHolds()  # speculative replies, waiting for their turn to end
        self.speculated_must_call: dict[int, str | None] = {}  # the tool the begun one must call
        self.untranscribed: list[CallerUtterance] = []  # sent to the Stt, no transcript yet
        self.transport: pykka.ActorRef[Any] | None = None
        self.tts: pykka.ActorRef[Any] | None = None
        self.stt: pykka.ActorRef[Any] | None = None
        self.llm: pykka.ActorRef[Any] | None = None
        self.timer: threading.Timer | None = None
        self.timer_due: float | None = None
        max_call_s = engines.agent.max_call_s
        notice = min(LIMIT_NOTICE_S, max_call_s / 2)
        self.limit_timer = threading.Timer(max_call_s - notice, self._time_is_up)
        self.limit_timer.name = "call-limit-timer"
        self.limit_timer.daemon = True

    def on_start(self) -> None:
        self.recorder.subscribe(self.liveness.fold)
        consent = self.consent
        retention = None if consent is None else CallerAudioRetention(self.recorder, consent)
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
        self.limit_timer.start()
        self._carry_out(self.policy.greet(self.greeting))

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
                self._tool_use(),
                self.holds,
            )

    def _tool_use(self) -> ToolUse | None:
        tools = self.engines.tools
        if tools is None:
            return None
        actor_ref = self.actor_ref

        def report(message: object) -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # the call ended meanwhile
                actor_ref.tell(message)

        return ToolUse(tools, self.recorder, report)

    # --- routing: what happened, to the policy -------------------------------------------

    def on_receive(self, message: Any) -> Any:
        self.pulse.beat()
        policy = self.policy
        if isinstance(message, CallerResumed):
            self._carry_out(policy.caller_resumed(message.inbound_ms))
        elif isinstance(message, CallerSpeech):
            if message.started:
                self._carry_out(policy.caller_started(message.inbound_ms))
            else:
                now = time.monotonic()
                self._carry_out(policy.caller_stopped(message.inbound_ms, now, self._unheard))
        elif isinstance(message, CallerUtterance):
            if self.stt is not None:
                if not message.rolling:
                    self.untranscribed.append(message)
                self.stt.tell(message)
        elif isinstance(message, Transcribed):
            self.untranscribed = [u for u in self.untranscribed if not _answers(message, u)]
            room = self.engines.llm is not None and self.engines.llm.has_room()
            self._carry_out(policy.transcribed(message, self._unheard, llm_has_room=room))
        elif isinstance(message, ReplyPlayed):
            self._carry_out(policy.reply_played(message.reply_id, time.monotonic()))
        elif isinstance(message, ModelAction):
            self._carry_out(policy.model_action(message.name, message.target))
        elif isinstance(message, KeyPressed):
            self._carry_out(policy.key_pressed(message.digit, time.monotonic()))
        elif isinstance(message, StageError):
            log.warning(
                "call %s: %s failed: %s", self.recorder.call_sid, message.stage, message.error
            )
            stage = Stage(message.stage)
            # The caller spoke again after the turn the STT failed on: that turn answers.
            superseded = stage == Stage.STT and len(self.untranscribed) > 1
            failed = policy.stage_failed(
                stage,
                message.reply_id,
                message.error,
                crashed=message.crashed,
                superseded=superseded,
            )
            self._carry_out(failed)
        elif isinstance(message, CheckLiveness):
            self.timer_due = None
            now = time.monotonic()
            quiet = Quiet.of(self.liveness.state, self.recorder.t0)  # an answer gone quiet, if any
            self._carry_out(policy.check_liveness(now, self._audio_since_turn(), quiet))
        elif isinstance(message, StreamStopped):
            self._carry_out(policy.end(message.reason))
        elif isinstance(message, Drain):
            self._carry_out(policy.drain())
        elif isinstance(message, CallTimeLimit):
            self._carry_out(policy.time_limit())
        elif message == "transport":
            return self.transport
        self._note_consent()
        return None

    def _note_consent(self) -> None:
        """Open retention once the caller has heard the recording announcement; once they
        cut into the greeting short of it, never (and no more looking)."""
        if self.consent is None or self.consent.given or self.consent_refused:
            return
        greeting = next((t for t in self.live.state.agent_turns() if t.reason == "greeting"), None)
        if greeting is None:
            return
        if self.consent.greeting_heard(greeting.heard_text):
            self.recorder.record(RecordingStarted, announcement=self.consent.announcement)
        elif greeting.interrupted:
            self.consent_refused = True

    def _unheard(self, reply_id: int) -> str:
        """The words of a reply after those the caller heard (the partial word included)."""
        turn = next((t for t in self.live.state.agent_turns() if t.reply_id == reply_id), None)
        if turn is None:
            return ""
        return " ".join(turn.generated_text.split()[len(turn.heard_text.split()) :])

    def _audio_since_turn(self) -> bool:
        """Audio of an answer went out (a holding line is not one: it only buys time)."""
        return any(
            turn.reply_id >= self.policy.first_reply_after_turn
            and turn.out_start_ms is not None
            and turn.reason not in ("hold", "filler")
            for turn in self.live.state.agent_turns()
        )

    # --- carrying out: the policy's actions, in order ------------------------------------

    def _carry_out(self, actions: list[Action], *, stopping: bool = False) -> None:
        for action in actions:
            if isinstance(action, Record):
                self.recorder.record(action.kind, **action.fields)
                if action.kind is SilenceFilled:
                    log.warning(
                        "call %s: dead air filled: %s", self.recorder.call_sid, action.fields
                    )
            elif isinstance(action, Say):
                self._say(action)
            elif isinstance(action, Generate):
                self._generate(action.reply_id, action.caller_turn)
            elif isinstance(action, Speculate):
                self._speculate(action)
            elif isinstance(action, Adopt):
                self._generate(action.reply_id, action.caller_turn, speculated=True)
            elif isinstance(action, WaitLonger):
                self.detector.unfinished.set()
            elif isinstance(action, StopReply):
                self.streams.cancel(action.reply_id)  # LLM stream closed, queued phrases skipped
                self.holds.drop(action.reply_id)  # a speculative one, waiting: abandoned
                if action.clear:
                    self.playout.clear(action.reply_id)
                    if self.tts is not None:
                        self.tts.tell(CancelReply(action.reply_id))
            elif isinstance(action, Restart):
                self._restart(action.stage)
            elif isinstance(action, EndCall):
                self._end(action.reason, stopping=stopping)
        if self.policy.agent_talking:
            self.detector.agent_talking.set()
        else:
            self.detector.agent_talking.clear()
        self._arm_liveness_timer()

    def _say(self, say: Say) -> None:
        """A line recorded as generated whole, then spoken: by the Tts, or (a line rendered
        once per process) queued straight into the playout."""
        record_line(self.recorder, say.reply_id, say.reason, say.text)
        if say.fixed:
            line = self.engines.fixed_lines.get(say.text)
            self.playout.enqueue_phrase(
                say.reply_id, 0, say.text, line.mulaw, line.words, yielding=say.yields
            )
        elif self.tts is not None:
            self.tts.tell(Synthesize(say.reply_id, 0, say.text))

    def _generate(self, reply_id: int, caller_turn: int, *, speculated: bool = False) -> None:
        """Reply ``reply_id`` answers ``caller_turn``: asked of the model now, or (begun at
        the turn's pause with the same transcript, hence the same chat) released."""
        if speculated:  # asked already, with the tool then due (the same chat: the same one)
            must_call = self.speculated_must_call.pop(reply_id, None)
        else:
            must_call = due_tool(self.engines.agent, self.live.state)
        self.recorder.record(
            ReplyRequested,
            reply_id=reply_id,
            reason=ANSWER_REASON,
            caller_turn=caller_turn,
            must_call=must_call,
        )
        if speculated:
            self.holds.release(reply_id)
            return
        assert self.llm is not None
        self.llm.tell(GenerateReply(reply_id, self._chat(self.live.state), must_call=must_call))

    def _speculate(self, speculate: Speculate) -> None:
        """Ask the model now for the reply the turn gets if it ends with this transcript:
        the chat is the one the end of turn would give (the transcript as its last turn)."""
        assert self.llm is not None
        assumed = heard_projection.fold(
            self.live.state,
            TranscriptFinal(
                call_sid=self.recorder.call_sid,
                seq=0,
                at_ms=0.0,
                turn=speculate.caller_turn,
                text=speculate.text,
            ),
        )
        self.holds.hold(speculate.reply_id)
        must_call = due_tool(self.engines.agent, assumed)
        self.speculated_must_call = {speculate.reply_id: must_call}  # one begun at a time
        self.llm.tell(
            GenerateReply(speculate.reply_id, self._chat(assumed), held=True, must_call=must_call)
        )

    def _chat(self, heard: heard_projection.Heard) -> list[dict[str, Any]]:
        return to_chat(
            context_messages(heard),
            self.engines.agent.system_prompt,
            self.engines.context_budget_tokens,
        )

    def _restart(self, stage: Stage) -> None:
        """A crashed or stalled stage gets a fresh actor (its per-call state is rebuilt empty).

        A stalled one is already abandoned: it stops by itself once its engine returns."""
        if stage == Stage.TTS:
            self._start_tts()
            if self.llm is not None:  # the Llm speaks through the Tts it was given
                self.llm.stop(block=False)
                self._start_llm()
        elif stage == Stage.STT:
            self._start_stt()
            # The failed actor took its inbox with it: the utterance it failed on is
            # apologised for, the ones queued behind it are transcribed by the new one.
            self.untranscribed = self.untranscribed[1:]
            for utterance in self.untranscribed:
                assert self.stt is not None
                self.stt.tell(utterance)
        elif stage == Stage.LLM:
            self._start_llm()

    def _arm_liveness_timer(self) -> None:
        due = self.policy.due_at()
        if due is None or due == self.timer_due or self.policy.ended:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_due = due
        self.timer = threading.Timer(max(due - time.monotonic(), 0.0) + TICK_S, self._tick)
        self.timer.name = "liveness-timer"
        self.timer.daemon = True
        self.timer.start()

    def _tick(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # the call ended
            self.actor_ref.tell(CheckLiveness())

    def _time_is_up(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(CallTimeLimit())

    def _end(self, reason: str, *, stopping: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.recorder.record(CallEnded, reason=reason)
        if not stopping:
            self.actor_ref.stop(block=False)

    def on_stop(self) -> None:
        self.limit_timer.cancel()
        if self.timer is not None:
            self.timer.cancel()
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
        self._carry_out(self.policy.end("supervisor failed"), stopping=True)
        self.on_stop()
