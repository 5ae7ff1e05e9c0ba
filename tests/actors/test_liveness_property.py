"""Liveness over generated call histories: no caller turn is left in silence past the bound.

Hypothesis draws calls whose stages misbehave in every way seen or feared (an STT
that is slow or stalls, LLM attempts that answer late, fail fast, stall or trickle
one token at a time, a TTS that is slow or stalls, callers who speak again or
wait). ``CallTimeline`` plays each call on a simulated clock through the same
decision code the supervisor runs (``DeadAirWatch``, ``retry_allowed``), with
the supervisor's reactions (a holding line queued at once, an apology through
the Tts, a barge-in cancelling the reply), and records the call's events. The
Liveness projection then folds them: every turn must hear the agent within the
bound, be recorded as needing no answer, or be followed by the caller's speech.
Each planted bug below must make the property fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.liveness import DeadAirWatch, Filler, GiveUp, Hold, retry_allowed
from events.catalogue import AudioSent, Event, SpeechStarted, SpeechStopped, TurnNotAnswered
from projections import liveness
from tests.support import planted
from tests.support.schedule import Schedule

Verdict = Filler | Hold | GiveUp | None

BOUND_S = 2.5
QUEUE_S = 0.02  # a rendered line reaches the socket within a pacer frame
STT_TIMEOUT_S, LLM_TIMEOUT_S, TTS_TIMEOUT_S = 5.0, 10.0, 5.0
APOLOGY_TTS_S = 0.3  # the apology is synthesized by a fresh Tts
TICK_S = 0.01  # the supervisor's liveness timer fires at least this far ahead


@dataclass(frozen=True)
class Attempt:
    kind: str  # "answer" (first phrase after ``after_s``), "fail", "stall", "trickle"
    after_s: float = 0.0


@dataclass(frozen=True)
class TurnScenario:
    stt_s: float | None  # None: the STT stalls (its timeout fires)
    noise: bool
    attempts: tuple[Attempt, ...]
    tts_s: float | None  # None: the TTS stalls on the answer's first phrase
    talks_again_s: float | None


attempts = st.one_of(
    st.builds(Attempt, st.just("answer"), st.floats(0.05, 8.0)),
    st.builds(Attempt, st.just("fail"), st.floats(0.01, 3.0)),
    st.builds(Attempt, st.sampled_from(["stall", "trickle"])),
)
turns = st.builds(
    TurnScenario,
    st.one_of(st.none(), st.floats(0.0, 1.5)),
    st.booleans(),
    st.lists(attempts, min_size=2, max_size=2).map(tuple),
    st.one_of(st.none(), st.floats(0.02, 3.0)),
    st.one_of(st.none(), st.floats(0.2, 12.0)),
)


@dataclass
class CallTimeline:
    """One call on a simulated clock: the supervisor's liveness decisions, and their events."""

    watch: DeadAirWatch = field(default_factory=lambda: DeadAirWatch(BOUND_S))
    events: list[Event] = field(default_factory=list)
    schedule: Schedule = field(default_factory=Schedule)
    _answered_at: float | None = None  # answer audio (not a holding line) since the turn
    _cancelled: set[int] = field(default_factory=set)
    _reply_id: int = 0

    def record(self, kind: type[Event], t: float, **fields: object) -> None:
        self.events.append(kind(call_sid="CA1", seq=len(self.events) + 1, at_ms=t * 1000, **fields))

    def run(self) -> list[Event]:
        self.schedule.run()
        return self.events

    # --- the call ------------------------------------------------------------------------

    def turn(self, end: float, scenario: TurnScenario) -> None:
        self._reply_id += 1
        reply_id = self._reply_id

        def turn_ended(t: float) -> None:
            self.record(SpeechStopped, t, inbound_ms=t * 1000, speech_ms=0.0)
            self.watch.turn_ended(t)
            self._answered_at = None
            self._arm(t)
            if scenario.stt_s is None:
                self.schedule.at(t + STT_TIMEOUT_S, apologise)
            else:
                self.schedule.at(t + scenario.stt_s, transcribed)
            if scenario.talks_again_s is not None:
                self.schedule.at(t + scenario.talks_again_s, talks_again)

        def apologise(t: float) -> None:  # the STT stalled: its timeout, then the apology
            self._audio(t + APOLOGY_TTS_S, reply_id)

        def transcribed(t: float) -> None:
            if reply_id in self._cancelled:
                return
            if scenario.noise:
                self.record(TurnNotAnswered, t, turn=reply_id, reason="noise")
                self.watch.settled()
                return
            self.watch.reply_requested(reply_id)
            self._attempt(t, t, 1, scenario, reply_id)

        def talks_again(t: float) -> None:
            self.record(SpeechStarted, t, inbound_ms=t * 1000)
            self.watch.settled()
            self._cancelled.add(reply_id)  # a barge-in cancels the pending reply

        self.schedule.at(end, turn_ended)

    def _attempt(
        self, start: float, t: float, attempt: int, scenario: TurnScenario, reply_id: int
    ) -> None:
        outcome = scenario.attempts[attempt - 1]

        def failed(u: float) -> None:
            if reply_id in self._cancelled:
                return
            if attempt < len(scenario.attempts) and retry_allowed(attempt, 0, u - start, BOUND_S):
                self._attempt(start, u, attempt + 1, scenario, reply_id)
            else:
                self._audio(u + APOLOGY_TTS_S, reply_id)  # the supervisor's apology

        if outcome.kind == "answer":
            spoken = (
                t + outcome.after_s + scenario.tts_s
                if scenario.tts_s is not None
                else None  # the TTS stalls: its timeout, then the apology
            )
            if spoken is not None:
                self._audio(spoken, reply_id)
            else:
                self.schedule.at(t + outcome.after_s + TTS_TIMEOUT_S, lambda u: failed(u))
        elif outcome.kind == "fail":
            self.schedule.at(t + outcome.after_s, failed)
        elif outcome.kind == "stall":
            self.schedule.at(t + LLM_TIMEOUT_S, failed)
        # "trickle": tokens keep coming, no phrase ever completes, no timeout ever fires

    def _audio(self, t: float, reply_id: int, *, hold: bool = False) -> None:
        """Audio of ``reply_id`` reaches the socket at ``t`` (unless cancelled by then)."""

        def sent(u: float) -> None:
            if reply_id in self._cancelled:
                return
            self.record(AudioSent, u, reply_id=reply_id, out_start_ms=0.0, out_end_ms=20.0)
            if not hold:
                self._answered_at = u

        self.schedule.at(t, sent)

    def _arm(self, now: float) -> None:
        due = self.watch.due_at()
        if due is not None:  # as the supervisor's timer: never sooner than TICK_S from now
            self.schedule.at(max(due, now + TICK_S), self._check)

    def _check(self, t: float) -> None:
        if self._answered_at is not None:
            self.watch.settled()
            return
        verdict = self.watch.check(t)
        if isinstance(verdict, Hold):
            self._audio(t + QUEUE_S, -1, hold=True)
        elif isinstance(verdict, GiveUp):
            if verdict.reply_id is not None:
                self._cancelled.add(verdict.reply_id)
            self._audio(t + QUEUE_S, -2)  # the fallback line
        self._arm(t)


def dead_air(scenarios: list[TurnScenario]) -> tuple[float, ...]:
    timeline = CallTimeline()
    for index, scenario in enumerate(scenarios):
        timeline.turn(5.0 + index * 60.0, scenario)
    events = timeline.run()
    state = liveness.fold_all(events, liveness.Liveness(bound_ms=BOUND_S * 1000))
    return state.dead_air_turns(now_ms=events[-1].at_ms + 60_000 if events else 0.0)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALLS = st.lists(turns, min_size=1, max_size=4)


@PROPERTY
@given(CALLS)
def test_no_caller_turn_waits_past_the_bound(scenarios: list[TurnScenario]) -> None:
    assert dead_air(scenarios) == ()


def must_fail() -> None:
    planted.must_fail(CALLS, lambda scenarios: dead_air(scenarios) == ())


def test_a_watch_satisfied_by_a_requested_reply_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bug (this issue's own): a reply was asked for, so all must be well. It was not:
    # the stream had been cut and the reply was empty.
    monkeypatch.setattr(DeadAirWatch, "reply_requested", lambda self, reply_id: self.settled())
    must_fail()


def test_a_watch_that_only_covers_the_llm_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug: the watch starts with the reply, so a slow or stalled STT leaves the caller
    # waiting for its own timeout (5 s) in silence.
    real = DeadAirWatch.check

    def llm_only(self: DeadAirWatch, now: float) -> Verdict:
        return None if self.reply_id is None else real(self, now)

    monkeypatch.setattr(DeadAirWatch, "check", llm_only)
    must_fail()


def test_a_watch_that_gives_up_without_a_holding_line_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bug: no holding line, only the fallback after the give-up time (7.5 s of silence).
    real = DeadAirWatch.check

    def no_hold(self: DeadAirWatch, now: float) -> Verdict:
        verdict = real(self, now)
        return None if isinstance(verdict, Hold) else verdict

    monkeypatch.setattr(DeadAirWatch, "check", no_hold)
    must_fail()
