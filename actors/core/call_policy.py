"""A call's decisions, sans I/O: what to do when something happens in the call.

The CallSupervisor feeds in what happened (the caller started or stopped talking,
a transcript came, a reply finished playing, a stage failed, the liveness timer
fired, the stream stopped) with the time, and carries out the actions returned,
in order: events to record, lines to say, replies to generate or stop, stages to
restart, the call to end. Every decision of a call lives here, in the style of
h11 (and of ``TurnTaking``, which it drives), so each is unit-tested without
threads or sockets (``tests/actors/test_call_policy.py``); the actor routes
messages and records.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from actors.core.agent import END_CALL, Agent
from actors.core.caller_silence import CallerSilence, SilenceVerdict
from actors.core.doubt import CLARIFY, CLARIFY_AT_MOST_IN_A_ROW, CLARIFY_NOISY, noisy, unsure
from actors.core.end_of_turn import sounds_unfinished
from actors.core.intents import asks_for_a_person, says_goodbye
from actors.core.liveness import (
    BOUND_S,
    GIVE_UP_S,
    DeadAirWatch,
    Filler,
    GiveUp,
    Hold,
    Late,
    Quiet,
    QuietWatch,
)
from actors.core.turn_taking import NO_SPEECH_ABOVE, TranscriptGate, TurnTaking, interruption_kind
from events.catalogue import (
    BargeInDetected,
    CallerSilent,
    CallTransferred,
    Event,
    ReplySpeculated,
    SilenceFilled,
    SpeculationDropped,
    SpeechStarted,
    SpeechStopped,
    StageCancelled,
    StageFailed,
    TranscriptFinal,
    TranscriptPartial,
    TurnNotAnswered,
)

APOLOGY = "Sorry, I missed that. Could you say it again?"
ACKNOWLEDGEMENT = "Yes? Go ahead."
# The gateway is shutting down and the call outlasted the drain: said, heard, then hung up.
DRAIN_GOODBYE = "I'm sorry, I have to end the call now. Please call again in a minute. Goodbye."
# The call reached its length limit (``Settings.max_call_s``): said, heard, then hung up.
TIME_LIMIT_GOODBYE = (
    "We've reached the time limit for this call, so I have to end it now. Thank you for "
    "calling. Goodbye."
)
LIMIT_NOTICE_S = 10.0  # the goodbye starts this long before the limit (half a short limit)
MAX_STAGE_FAILURES = 3  # a stage failing this often in one call ends the call
KEYPAD_TURN = 0  # the caller turn a key press answers (transcribed turns count from 1)


def plain_agent() -> Agent:
    """An agent with every default and no persona: the policy's when none is given."""
    return Agent(name="", system_prompt="", greeting="")


class Stage(StrEnum):
    """The parts of a call that can fail on their own (recorded in ``StageFailed.stage``)."""

    TRANSPORT = "transport"
    STT = "stt"
    LLM = "llm"
    TTS = "tts"
    PLAYOUT = "playout"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Transcribed:
    turn: int
    text: str
    no_speech_probability: float
    inbound_start_ms: float
    inbound_end_ms: float
    speech_end_ms: float
    tentative: bool = False
    rolling: bool = False
    avg_logprob: float = 0.0  # how sure the recogniser was (``actors.core.doubt``)
    compression_ratio: float = 1.0
    weakest_token_logprob: float = 0.0
    speech_to_noise_db: float = math.inf  # the voice over the line's noise (not measured: inf)


# --- actions: what the supervisor carries out -----------------------------------------------


@dataclass(frozen=True)
class Record:
    """Record this event (the call's recorder stamps call, sequence and time)."""

    kind: type[Event]
    fields: dict[str, Any]


@dataclass(frozen=True)
class Say:
    """Say a line as reply ``reply_id`` (recorded as generated whole). ``fixed``: a line
    rendered once per process, queued straight into the playout (heard even when the
    TTS is the stage that is late); else synthesized by the Tts. ``yields``: it may stop
    at a clause's end once the reply it covers for is ready (the filler, the holding line)."""

    reply_id: int
    text: str
    reason: str
    fixed: bool = False
    yields: bool = False


@dataclass(frozen=True)
class Generate:
    """Ask the LLM for reply ``reply_id`` to caller turn ``caller_turn``, from what was heard."""

    reply_id: int
    caller_turn: int


@dataclass(frozen=True)
class StopReply:
    """Stop the work on a reply (its LLM stream closed, its queued phrases skipped);
    ``clear``: the caller cut in on it, so the phone's buffered audio is cleared too."""

    reply_id: int
    clear: bool = False


@dataclass(frozen=True)
class Restart:
    """Start a fresh actor for a stage that crashed or stalled."""

    stage: Stage


@dataclass(frozen=True)
class EndCall:
    """Record ``CallEnded(reason)`` and stop the call's actors."""

    reason: str


@dataclass(frozen=True)
class Speculate:
    """Ask the LLM now for reply ``reply_id``, as if the caller's turn had ended with
    ``text``; hold it (nothing recorded, nothing spoken) until ``Adopt`` or ``StopReply``."""

    reply_id: int
    caller_turn: int
    text: str


@dataclass(frozen=True)
class Adopt:
    """The turn ended as speculated: reply ``reply_id`` is the answer; let it speak."""

    reply_id: int
    caller_turn: int


@dataclass(frozen=True)
class WaitLonger:
    """The words before the caller's pause sound unfinished: this pause ends the turn only
    after the longer silence (``actors.core.end_of_turn``)."""


@dataclass(frozen=True)
class Speculation:
    reply_id: int
    transcript: Transcribed


Verdict = Literal[
    "answer", "resume", "acknowledge", "noise", "listening", "unclear", "goodbye", "person"
]

Action = Record | Say | Generate | Speculate | Adopt | WaitLonger | StopReply | Restart | EndCall


def record(kind: type[Event], **fields: Any) -> Record:
    return Record(kind, fields)


def _finite(value: float) -> float | None:
    """A measure for an event (JSON has no infinity): rounded, or None if not measured."""
    return round(value, 1) if math.isfinite(value) else None


# --- the policy -------------------------------------------------------------------------------


@dataclass
class CallPolicy:
    converses: bool = True  # False: greets and listens only (no STT or LLM)
    agent: Agent = field(default_factory=plain_agent)  # its lines, silences, keys, targets
    bound_s: float = BOUND_S
    give_up_s: float = GIVE_UP_S
    turns: TurnTaking = field(default_factory=TurnTaking)
    transcripts: TranscriptGate[Transcribed] = field(default_factory=TranscriptGate)
    failures: Counter[Stage] = field(default_factory=Counter)
    apology_owed: bool = False  # a stage failed while the caller spoke: say so when they stop
    clarified_in_a_row: int = 0  # turns asked about since one was answered
    first_reply_after_turn: int = 0  # replies from this id on answer the watched turn
    ended: bool = False
    closing: tuple[int, str] | None = None  # (the goodbye's reply, why): end once it is heard
    preemptive: bool = True  # start the reply at the turn's pause (``_speculate``)
    speculation: Speculation | None = None  # the reply begun at the pause, not yet adopted
    resumed_at_ms: float = 0.0  # where the caller last spoke again after a pause
    filler_speech_s: float = 0.0  # how long the agent's filler sounds (its words' end)

    def __post_init__(self) -> None:
        self.watch = DeadAirWatch(
            self.bound_s,
            self.give_up_s,
            filler_s=self.agent.filler_after_s,
            filler_speech_s=self.filler_speech_s,
        )
        self.quiet = QuietWatch(give_up_s=self.give_up_s)
        self.silence = CallerSilence(self.agent.silence.reprompt_s, self.agent.silence.hangup_s)

    def due_at(self) -> float | None:
        """When ``check_liveness`` next has something to decide (None: nothing pending)."""
        watches = (self.watch.due_at(), self.quiet.due_at(), self.silence.due_at())
        return min((due for due in watches if due is not None), default=None)

    @property
    def agent_talking(self) -> bool:
        """A reply holds the floor (the speech detector then listens for a barge-in)."""
        return self.turns.agent_reply is not None

    def greet(self, greeting: str) -> list[Action]:
        return [self._say(greeting, "greeting")] if greeting else []

    def caller_started(self, inbound_ms: float) -> list[Action]:
        actions: list[Action] = [record(SpeechStarted, inbound_ms=inbound_ms)]
        self.silence.someone_talks()
        if self.closing is not None:
            return actions  # the goodbye is said in full: nothing else is answered
        self.watch.settled()  # the caller talks again: the end of this turn re-arms it
        barge_in = self.turns.caller_started(inbound_ms)
        if barge_in is not None:
            actions.append(
                record(BargeInDetected, reply_id=barge_in.reply_id, inbound_ms=inbound_ms)
            )
            actions.append(StopReply(barge_in.reply_id, clear=True))
        return actions

    def caller_stopped(
        self, inbound_ms: float, now: float, unheard: Callable[[int], str]
    ) -> list[Action]:
        """The caller's turn ended at ``inbound_ms`` (``unheard(reply_id)``: the words of a
        reply the caller did not hear, for resuming it)."""
        self.turns.caller_stopped()
        actions: list[Action] = [record(SpeechStopped, inbound_ms=inbound_ms, speech_ms=0.0)]
        if self.closing is not None:
            return actions
        self.silence.floor_free(now)  # until an answer takes the floor
        if not self.converses:
            actions.append(record(TurnNotAnswered, turn=0, reason="listening_only"))
        else:
            self.watch.turn_ended(now)
            early = self.speculation  # begun at the pause: its id is older than the turn's end
            self.first_reply_after_turn = (
                self.turns.next_reply_id if early is None else early.reply_id
            )
        transcript = self.transcripts.turn_ended(inbound_ms)
        if transcript is not None:
            actions += self._final_transcript(transcript, unheard)
            return actions
        actions += self._drop_speculation("the turn went on past its pause")
        if self.apology_owed and self.turns.agent_reply is None:
            self.apology_owed = False
            actions.append(self._say(APOLOGY, "apology"))
        return actions

    def transcribed(
        self,
        transcript: Transcribed,
        unheard: Callable[[int], str],
        *,
        llm_has_room: bool = True,
    ) -> list[Action]:
        """A transcript is in (``llm_has_room``: the model could start a reply now without
        making another call's wait, so one may be begun at a pause)."""
        actions: list[Action] = []
        if transcript.tentative and transcript.text.strip():
            actions.append(
                record(
                    TranscriptPartial,
                    turn=transcript.turn,
                    text=transcript.text.strip(),
                    rolling=transcript.rolling,
                    inbound_end_ms=transcript.inbound_end_ms,
                )
            )
        if transcript.rolling:
            return actions  # the caller was still talking: never the turn's answer
        final = self.transcripts.transcribed(transcript.speech_end_ms, transcript)
        if final is not None:
            actions += self._final_transcript(final, unheard)
        elif transcript.tentative:  # a pause: the turn may end here
            actions += self._drop_speculation("a later pause")
            if transcript.speech_end_ms < self.resumed_at_ms:
                return actions  # the caller has gone on since: this pause is moot
            if sounds_unfinished(transcript.text):  # "a table for ...": wait, begin nothing
                return actions + [WaitLonger()]
            if llm_has_room:
                actions += self._speculate(transcript)
        return actions

    def _final_transcript(
        self, transcript: Transcribed, unheard: Callable[[int], str]
    ) -> list[Action]:
        self.apology_owed = False
        text = transcript.text.strip()
        noise = not text or transcript.no_speech_probability > NO_SPEECH_ABOVE
        actions: list[Action] = []
        if not noise:
            actions.append(
                record(
                    TranscriptFinal,
                    turn=transcript.turn,
                    text=text,
                    inbound_start_ms=transcript.inbound_start_ms,
                    inbound_end_ms=transcript.inbound_end_ms,
                    avg_logprob=round(transcript.avg_logprob, 3),
                    compression_ratio=round(transcript.compression_ratio, 3),
                    weakest_token_logprob=round(transcript.weakest_token_logprob, 3),
                    speech_to_noise_db=_finite(transcript.speech_to_noise_db),
                )
            )
        interrupted = self.turns.take_interrupted()
        if self.closing is not None:
            return actions + self._drop_speculation("the call is closing")
        if self.turns.caller_speaking or self.turns.agent_reply is not None:
            return actions  # the caller is already talking again, or the agent already answers
        verdict = self._verdict(transcript, interrupted)
        if verdict != "answer":
            actions += self._drop_speculation(f"the turn was not answered: {verdict}")
        if verdict == "resume":  # from the first word the caller did not hear
            rest = unheard(interrupted) if interrupted is not None else ""
            return actions + ([self._say(rest, "resume")] if rest else [])
        if verdict == "acknowledge":
            return actions + [self._say(ACKNOWLEDGEMENT, "acknowledge")]
        if verdict in ("noise", "listening"):  # a cough is owed no answer; with no LLM none can
            if verdict == "noise":
                actions.append(record(TurnNotAnswered, turn=transcript.turn, reason="noise"))
            self.watch.settled()
            return actions
        if verdict == "unclear":
            actions.append(record(TurnNotAnswered, turn=transcript.turn, reason="unclear"))
            self.watch.settled()
            self.clarified_in_a_row += 1
            question = CLARIFY_NOISY if noisy(transcript) else CLARIFY
            return actions + [self._say(question, "clarify")]
        if verdict == "goodbye":
            self.watch.settled()
            return actions + self.end_politely(self.agent.goodbye, "caller said goodbye")
        if verdict == "person" and self.agent.default_target is not None:
            self.watch.settled()
            return actions + self.transfer(self.agent.default_target, "caller asked")
        self.clarified_in_a_row = 0
        return actions + self._answer(transcript.turn, transcript)

    def _verdict(self, transcript: Transcribed, interrupted: int | None) -> Verdict:
        """What a finished caller turn asks of the agent, from its transcript alone."""
        text = transcript.text.strip()
        if interrupted is not None:
            kind = interruption_kind(text, transcript.no_speech_probability)
            if kind != "answer":
                return kind
        if not text or transcript.no_speech_probability > NO_SPEECH_ABOVE:
            return "noise"
        if not self.converses:
            return "listening"
        if unsure(transcript) and self.clarified_in_a_row < CLARIFY_AT_MOST_IN_A_ROW:
            return "unclear"
        if says_goodbye(text):
            return "goodbye"
        if asks_for_a_person(text) and self.agent.default_target is not None:
            return "person"
        return "answer"

    def _answer(self, caller_turn: int, transcript: Transcribed | None = None) -> list[Action]:
        """The model answers the turn: the reply begun on its pause, if that transcript is
        this one (its head start kept), else a new request."""
        self.silence.someone_talks()
        early = self.speculation
        if early is not None and early.transcript is transcript:
            self.speculation = None
            self.turns.take_floor(early.reply_id)
            self.watch.reply_requested(early.reply_id)
            return [Adopt(early.reply_id, caller_turn)]
        actions = self._drop_speculation("the turn went on past its pause")
        reply_id = self.turns.start_reply()
        self.watch.reply_requested(reply_id)
        return [*actions, Generate(reply_id, caller_turn)]

    def _speculate(self, transcript: Transcribed) -> list[Action]:
        """At a pause, start the reply the turn would get if it ended here (preemptive
        generation): the model thinks through the end-of-turn wait, and nothing of it is
        heard or kept until the turn ends with this very transcript."""
        if (
            not self.preemptive
            or self.closing is not None
            or self.turns.agent_reply is not None
            or self._verdict(transcript, self.turns.interrupted_reply) != "answer"
        ):
            return []
        reply_id = self.turns.start_aside()  # reserved; the floor is taken on adoption
        self.speculation = Speculation(reply_id, transcript)
        speculated = record(ReplySpeculated, reply_id=reply_id, caller_turn=transcript.turn)
        return [speculated, Speculate(reply_id, transcript.turn, transcript.text.strip())]

    def _drop_speculation(self, reason: str) -> list[Action]:
        early, self.speculation = self.speculation, None
        if early is None:
            return []
        return [
            record(SpeculationDropped, reply_id=early.reply_id, reason=reason),
            StopReply(early.reply_id),
        ]

    def caller_resumed(self, inbound_ms: float) -> list[Action]:
        """The caller spoke again after a pause: a reply begun on it answers nothing (and a
        transcript of it still to come begins none)."""
        self.resumed_at_ms = inbound_ms
        return self._drop_speculation("the caller went on")

    def key_pressed(self, digit: str, now: float) -> list[Action]:
        """A key on the caller's keypad: the agent file's action for it, else the model is
        asked, the key reaching it as the caller's words (Heard folds ``DtmfReceived``).
        Like speech, a key press cuts in on what the agent was saying."""
        if self.ended or self.closing is not None:
            return []
        action = self.agent.digits.get(digit)
        reason = f"caller pressed {digit}"
        if action == END_CALL:
            return self.end_politely(self.agent.goodbye, reason)
        if action is not None:
            target = self.agent.digit_target(action)
            assert target is not None  # the agent file's check: a transfer names a target
            return self.transfer(target, reason)
        if not self.converses:
            return []
        actions = self._cut_the_agent()
        self.watch.turn_ended(now)
        self.first_reply_after_turn = self.turns.next_reply_id
        return actions + self._answer(KEYPAD_TURN)

    def model_action(self, name: str, target_name: str | None) -> list[Action]:
        """The model called a built-in action while answering: end the call, or put it
        through to one of the agent's transfer targets (by name; else the default)."""
        if name == END_CALL:
            return self.end_politely(self.agent.goodbye, "agent ended the call")
        target = self.agent.transfer_targets.get(target_name or "", self.agent.default_target)
        if target is None:
            return []  # nowhere to put the caller through: the call goes on
        return self.transfer(target, "agent transferred")

    def transfer(self, target: str, reason: str) -> list[Action]:
        """Put the caller through to ``target``: recorded, then the agent says so, and once
        that is heard the stream ends (the after-stream TwiML dials the target)."""
        if self.ended or self.closing is not None:
            return []
        transferred = record(CallTransferred, target=target, reason=reason)
        return [transferred, *self.end_politely(self.agent.transferring, "transferred")]

    def reply_played(self, reply_id: int, now: float) -> list[Action]:
        self.turns.reply_played(reply_id)
        if self.closing is not None and self.closing[0] == reply_id:
            return self.end(self.closing[1])  # the goodbye was heard in full
        if self.turns.agent_reply is None and not self.turns.caller_speaking:
            self.silence.floor_free(now)
        return []

    def _cut_the_agent(self) -> list[Action]:
        """Stop the reply holding the floor, clearing what the phone has buffered of it."""
        if self.turns.agent_reply is None:
            return []
        cut = self.turns.agent_reply
        self.turns.reply_played(cut)
        return [StopReply(cut, clear=True)]

    def drain(self) -> list[Action]:
        """The gateway is shutting down and this call outlasted the drain."""
        return self.end_politely(DRAIN_GOODBYE, "gateway draining")

    def time_limit(self) -> list[Action]:
        """The call is near its length limit."""
        return self.end_politely(TIME_LIMIT_GOODBYE, "call time limit")

    def end_politely(self, goodbye_text: str, reason: str) -> list[Action]:
        """Whatever the agent was saying stops, it says ``goodbye_text`` (no barge-in, no
        answer), and once that has been heard in full the call ends with ``reason``."""
        if self.ended or self.closing is not None:
            return []
        actions = self._cut_the_agent()
        self.watch.settled()
        goodbye = self._say(goodbye_text, "goodbye", fixed=True)
        self.closing = (goodbye.reply_id, reason)
        return actions + [goodbye]

    def stage_failed(
        self,
        stage: Stage,
        reply_id: int | None,
        error: str,
        *,
        crashed: bool,
        superseded: bool = False,
    ) -> list[Action]:
        """A stage failed. ``superseded``: the caller has spoken again since the turn the
        STT failed on, and that newer turn is being transcribed: it answers them, so no
        apology talks over it (and none is owed)."""
        self.failures[stage] += 1
        failures = self.failures[stage]
        # No way to hear or speak, or a stage that keeps failing: end the call, recorded.
        if stage == Stage.TRANSPORT or failures >= MAX_STAGE_FAILURES:
            times = f" {failures} times" if failures > 1 else ""
            ending = record(StageFailed, stage=stage, error=error[:500], action="end_call")
            return [ending, *self.end(f"{stage} failed{times}")]
        early = self.speculation
        if early is not None and self._failed_on(early, stage, reply_id, crashed=crashed):
            lost = record(
                StageFailed,
                stage=stage,
                error=error[:500],
                action="dropped",
                reply_id=early.reply_id,
            )
            restart = [Restart(stage)] if crashed else []
            return [lost, *restart, *self._drop_speculation(f"{stage} failed")]
        reply_id = reply_id if reply_id is not None else self.turns.agent_reply
        action = "superseded" if superseded else "apologise"
        actions: list[Action] = [
            record(StageFailed, stage=stage, error=error[:500], action=action, reply_id=reply_id)
        ]
        if crashed:
            actions.append(Restart(stage))
            if stage in (Stage.LLM, Stage.TTS):  # the Llm restarted: a begun reply went with it
                actions += self._drop_speculation(f"{stage} failed")
        if reply_id is not None:  # the reply it was working on is lost
            self.turns.reply_played(reply_id)
            actions.append(StopReply(reply_id))
            actions.append(record(StageCancelled, stage=stage, reply_id=reply_id))
        if superseded:
            self.apology_owed = False
        elif self.turns.caller_speaking:
            # Not over the caller. A lost transcript leaves their turn unanswered: apologise
            # when it ends. (A lost reply needs nothing: the caller's new turn gets one.)
            self.apology_owed = stage == Stage.STT
        elif self.turns.agent_reply is None:
            actions.append(self._say(APOLOGY, "apology"))
        return actions

    def _failed_on(
        self, early: Speculation, stage: Stage, reply_id: int | None, *, crashed: bool
    ) -> bool:
        """Did the failure hit ``early``, the reply begun at a pause (owed nothing)? A crash
        names no reply: a crashed Llm was on the begun one unless an answer is being spoken."""
        if reply_id is not None:
            return reply_id == early.reply_id
        return crashed and stage == Stage.LLM and self.turns.agent_reply is None

    def check_liveness(
        self, now: float, audio_since_turn: bool, quiet: Quiet | None = None
    ) -> list[Action]:
        """The liveness timer fired (or an answer began to sound): the agent's silence
        before an answer (``_check_dead_air``) and inside one (``quiet``: how the answer
        holding the floor stands, if it sounded and has more to come), and the caller's
        (``_check_caller_silence``), each decided when its time has come."""
        dead_air = self._check_dead_air(now, audio_since_turn)
        return dead_air + self._check_quiet_answer(now, quiet) + self._check_caller_silence(now)

    def _check_quiet_answer(self, now: float, quiet: Quiet | None) -> list[Action]:
        if self.ended or self.closing is not None or self.turns.caller_speaking:
            quiet = None
        elif quiet is not None and quiet.reply_id != self.turns.agent_reply:
            quiet = None  # cut, or given up on: it no longer holds the floor
        self.quiet.update(quiet)
        verdict = self.quiet.check(now)
        return [] if verdict is None else self._fill(verdict)

    def _check_caller_silence(self, now: float) -> list[Action]:
        if not self.converses or self.ended or self.closing is not None:
            return []
        if self.agent_talking or self.turns.caller_speaking:
            return []
        silent_ms = round(self.silence.waited_ms(now), 1)
        verdict = self.silence.check(now)
        if verdict is None:
            return []
        noticed = record(CallerSilent, action=verdict.value, silent_ms=silent_ms)
        if verdict == SilenceVerdict.REPROMPT:
            return [noticed, self._say(self.agent.silence.reprompt, "reprompt")]
        return [noticed, *self.end_politely(self.agent.silence.goodbye, "caller silent")]

    def _check_dead_air(self, now: float, audio_since_turn: bool) -> list[Action]:
        """Has the caller heard an answer since their turn ended (``audio_since_turn``)?
        If not, and the bound has come, fill the silence."""
        if audio_since_turn:
            self.watch.settled()
            return []
        verdict = self.watch.check(now)
        return [] if verdict is None else self._fill(verdict)

    def _fill(self, verdict: Late) -> list[Action]:
        """Say what the verdict calls for, recorded with what the caller waited for."""
        actions: list[Action] = [
            record(
                SilenceFilled,
                action=verdict.action,
                waiting_for=verdict.waiting_for,
                waited_ms=round(verdict.waited_ms, 1),
                reply_id=verdict.reply_id,
            )
        ]
        if isinstance(verdict, GiveUp) and verdict.reply_id is not None:
            self.turns.reply_played(verdict.reply_id)
            actions.append(StopReply(verdict.reply_id))
            actions.append(record(StageCancelled, stage=Stage.LLM, reply_id=verdict.reply_id))
        if isinstance(verdict, Filler):  # the agent's own, said like the holding line
            filler = self._say(self.agent.filler, "filler", fixed=True, aside=True, yields=True)
            return [*actions, filler]
        hold = isinstance(verdict, Hold)  # it yields to the answer, like the filler
        reason = "hold" if hold else "fallback"
        actions.append(self._say(verdict.line, reason, fixed=True, aside=hold, yields=hold))
        return actions

    def end(self, reason: str) -> list[Action]:
        """End the call (once): the reply in flight is stopped, ``CallEnded`` recorded."""
        if self.ended:
            return []
        self.ended = True
        self.watch.settled()
        stop = [StopReply(self.turns.agent_reply)] if self.turns.agent_reply is not None else []
        return [*self._drop_speculation("the call ended"), *stop, EndCall(reason)]

    def _say(
        self,
        text: str,
        reason: str,
        *,
        fixed: bool = False,
        aside: bool = False,
        yields: bool = False,
    ) -> Say:
        """A line as a reply of its own; an ``aside`` (the holding line) leaves the floor to
        the reply it covers for."""
        if not aside and reason != "reprompt":  # the reprompt leaves the caller's silence on
            self.silence.someone_talks()
        reply_id = self.turns.start_aside() if aside else self.turns.start_reply()
        return Say(reply_id, text, reason, fixed, yields)
