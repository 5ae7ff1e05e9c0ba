"""A hypothesis state machine that generates valid call histories and checks the projections.

The machine plays Twilio and the agent at once: it keeps the truth (what has been
sent, what has really played) and emits the events a correct gateway would emit:
replies streamed as text, synthesized in segments with word timings, sent in
chunks with a mark at every word end, marks echoed as playback passes them,
barge-ins that clear the buffer (flushing pending marks) and record a truncation
whose estimate errs by up to ``CLOCK_ERROR_MS`` either way, as a real clock's does.

After every step the invariants below are checked. ``tests/projections/
test_planted_bugs.py`` plants a bug for each one and shows it is caught.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from events import codec
from events.catalogue import (
    AudioSent,
    BargeInDetected,
    CallStarted,
    ClearSent,
    Event,
    MarkFlushed,
    MarkPlayed,
    MarkSent,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    ReplyTruncated,
    SpeechStarted,
    SpeechStopped,
    SpeechSynthesized,
    TranscriptFinal,
    WordTiming,
)
from projections import heard as heard_projection
from projections.context import INTERRUPTED_MARKER, context_messages
from projections.heard import AgentTurn, Heard
from projections.words import PlacedWord

CLOCK_ERROR_MS = 30.0

words_strategy = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz'", min_size=1, max_size=8), min_size=1, max_size=12
)


@dataclass
class ReplyModel:
    reply_id: int
    words: list[str]
    queued_end_ms: float
    synthesized: int = 0  # words synthesized so far
    placed: list[PlacedWord] = field(default_factory=list)
    out_start_ms: float | None = None
    unsent_marks: list[tuple[str, float]] = field(default_factory=list)


class CallHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.call_sid = "CAprop"
        self.events: list[Event] = []
        self.heard = Heard()
        self.checked_upto = 0
        self.last_seen: dict[int, tuple[float, list[str]]] = {}
        self.clock_ms = 0.0
        self.sent_ms = 0.0  # outbound stream position sent
        self.played_ms = 0.0  # the truth: outbound stream position played
        self.pending_marks: list[tuple[str, int, float]] = []  # sent, not yet echoed
        self.reply: ReplyModel | None = None
        self.replies: dict[int, ReplyModel] = {}
        self.played_at_cut: dict[int, float] = {}  # the truth where a reply was cut
        self.next_reply_id = 1
        self.caller_turns = 0

    def emit(self, kind: type[Event], **fields: Any) -> None:
        self.clock_ms += 1.0
        event = kind(
            call_sid=self.call_sid, seq=len(self.events) + 1, at_ms=self.clock_ms, **fields
        )
        self.events.append(event)
        self.heard = heard_projection.fold(self.heard, event)
        self.heard_never_shrinks()  # per event: a rule emits several

    @initialize()
    def start(self) -> None:
        self.emit(CallStarted, stream_sid="MZprop", wall_time_unix=1.7e9)

    @rule(words=words_strategy)
    def caller_speaks(self, words: list[str]) -> None:
        self.caller_turns += 1
        self.emit(SpeechStarted, inbound_ms=self.clock_ms)
        self.emit(SpeechStopped, inbound_ms=self.clock_ms, speech_ms=300.0)
        self.emit(TranscriptFinal, turn=self.caller_turns, text=" ".join(words))

    @precondition(lambda self: self.reply is None)
    @rule(words=words_strategy, cuts=st.lists(st.integers(0, 200), max_size=4))
    def start_reply(self, words: list[str], cuts: list[int]) -> None:
        reply = ReplyModel(self.next_reply_id, words, queued_end_ms=self.sent_ms)
        self.next_reply_id += 1
        self.reply = reply
        self.replies[reply.reply_id] = reply
        self.emit(ReplyRequested, reply_id=reply.reply_id)
        text = " ".join(words)
        bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):  # LLM chunks split anywhere
            self.emit(ReplyTextGenerated, reply_id=reply.reply_id, text=text[start:end])

    @precondition(
        lambda self: self.reply is not None and self.reply.synthesized < len(self.reply.words)
    )
    @rule(
        count=st.integers(1, 5),
        durations=st.lists(st.floats(60, 600), min_size=5, max_size=5),
        pause=st.floats(0, 120),
    )
    def synthesize(self, count: int, durations: list[float], pause: float) -> None:
        reply = self.reply
        assert reply is not None
        taken = reply.words[reply.synthesized : reply.synthesized + count]
        timings, t = [], pause
        for word, duration in zip(taken, durations, strict=False):
            timings.append(WordTiming(word, t, t + duration))
            t += duration + pause
        segment_start = reply.queued_end_ms
        self.emit(
            SpeechSynthesized,
            reply_id=reply.reply_id,
            segment=reply.synthesized,
            text=" ".join(taken),
            words=tuple(timings),
            audio_ms=t,
            out_start_ms=segment_start,
        )
        for index, timing in enumerate(timings):
            end = segment_start + timing.end_ms
            reply.placed.append(PlacedWord(timing.text, segment_start + timing.start_ms, end))
            reply.unsent_marks.append((f"r{reply.reply_id}w{reply.synthesized + index}", end))
        reply.synthesized += len(taken)
        reply.queued_end_ms = segment_start + t

    @precondition(lambda self: self.reply is not None and self.sent_ms < self.reply.queued_end_ms)
    @rule(chunk_ms=st.sampled_from([20.0, 40.0, 100.0, 400.0]))
    def send_audio(self, chunk_ms: float) -> None:
        reply = self.reply
        assert reply is not None
        end = min(self.sent_ms + chunk_ms, reply.queued_end_ms)
        if reply.out_start_ms is None:
            reply.out_start_ms = self.sent_ms
        self.emit(AudioSent, reply_id=reply.reply_id, out_start_ms=self.sent_ms, out_end_ms=end)
        self.sent_ms = end
        while reply.unsent_marks and reply.unsent_marks[0][1] <= end:
            name, at = reply.unsent_marks.pop(0)
            self.emit(MarkSent, name=name, reply_id=reply.reply_id, out_ms=at)
            self.pending_marks.append((name, reply.reply_id, at))

    @precondition(lambda self: bool(self.pending_marks))
    @rule(beyond_ms=st.floats(0, 10))
    def play_past_next_mark(self, beyond_ms: float) -> None:
        """Playback just passed a mark: the common moment for a barge-in to land."""
        self.play(self.pending_marks[0][2] - self.played_ms + beyond_ms)

    @precondition(lambda self: self.played_ms < self.sent_ms)
    @rule(ms=st.floats(1, 500))
    def play(self, ms: float) -> None:
        self.played_ms = min(self.sent_ms, self.played_ms + ms)
        while self.pending_marks and self.pending_marks[0][2] <= self.played_ms:
            name, reply_id, at = self.pending_marks.pop(0)
            self.emit(MarkPlayed, name=name, reply_id=reply_id, out_ms=at)
        reply = self.reply
        if (
            reply is not None
            and reply.synthesized == len(reply.words)
            and self.played_ms >= reply.queued_end_ms
            and not reply.unsent_marks
        ):
            self.emit(ReplyCompleted, reply_id=reply.reply_id, finish_reason="stop")
            self.reply = None

    @precondition(lambda self: self.reply is not None and self.reply.out_start_ms is not None)
    @rule(error=st.floats(-CLOCK_ERROR_MS, CLOCK_ERROR_MS))
    def barge_in(self, error: float) -> None:
        reply = self.reply
        assert reply is not None and reply.out_start_ms is not None
        self.emit(BargeInDetected, reply_id=reply.reply_id, inbound_ms=self.clock_ms)
        self.emit(ClearSent, reply_id=reply.reply_id, out_sent_ms=self.sent_ms)
        for name, reply_id, at in self.pending_marks:  # Twilio echoes every pending mark on clear
            self.emit(MarkFlushed, name=name, reply_id=reply_id, out_ms=at)
        self.pending_marks = []
        truth = self.played_ms - reply.out_start_ms
        sent = self.sent_ms - reply.out_start_ms
        estimate = min(max(truth + error, 0.0), sent)
        lower = min(max(truth - CLOCK_ERROR_MS, 0.0), estimate)
        self.played_at_cut[reply.reply_id] = self.played_ms
        self.emit(
            ReplyTruncated,
            reply_id=reply.reply_id,
            heard_ms=estimate,
            heard_lower_ms=lower,
            heard_upper_ms=min(truth + CLOCK_ERROR_MS, sent),
        )
        self.emit(ReplyCompleted, reply_id=reply.reply_id, finish_reason="cancelled")
        self.played_ms = self.sent_ms  # the rest of the buffer was dropped, never played
        self.reply = None

    def _pending_mark_of_reply(self) -> bool:
        reply = self.reply
        return reply is not None and any(r == reply.reply_id for _, r, _ in self.pending_marks)

    @precondition(
        lambda self: (
            self.reply is not None
            and (self.sent_ms < self.reply.queued_end_ms or self._pending_mark_of_reply())
        )
    )
    @rule(beyond_ms=st.floats(0, 10), error=st.floats(-CLOCK_ERROR_MS, CLOCK_ERROR_MS))
    def barge_in_just_after_a_word(self, beyond_ms: float, error: float) -> None:
        """The caller cuts in right after a word's mark echoed (the estimate may land before it)."""
        reply = self.reply
        assert reply is not None
        while not self._pending_mark_of_reply() and self.sent_ms < reply.queued_end_ms:
            self.send_audio(20.0)
        if self._pending_mark_of_reply():
            self.play_past_next_mark(beyond_ms)
        if self.reply is not None and self.reply.out_start_ms is not None:
            self.barge_in(error)

    @precondition(
        lambda self: (
            self.reply is not None
            and (self.sent_ms < self.reply.queued_end_ms or self._pending_mark_of_reply())
        )
    )
    @rule(before_ms=st.floats(0, CLOCK_ERROR_MS / 2), error=st.floats(0, CLOCK_ERROR_MS))
    def barge_in_as_a_word_is_ending(self, before_ms: float, error: float) -> None:
        """The caller cuts in just before a word ends and the clock's estimate runs a little
        late (the case that matters here; ``barge_in`` covers early estimates): counting
        words up to the estimate would take in that unfinished word."""
        reply = self.reply
        assert reply is not None
        while not self._pending_mark_of_reply() and self.sent_ms < reply.queued_end_ms:
            self.send_audio(20.0)
        if not self._pending_mark_of_reply():
            return
        mark_at = next(at for _, r, at in self.pending_marks if r == reply.reply_id)
        if mark_at - before_ms > self.played_ms:
            self.play(mark_at - before_ms - self.played_ms)
        if self.reply is not None and self.reply.out_start_ms is not None:
            self.barge_in(error)

    # --- invariants ------------------------------------------------------

    def agent_turns(self) -> list[AgentTurn]:
        return self.heard.agent_turns()

    @invariant()
    def heard_never_exceeds_sent(self) -> None:
        for turn in self.agent_turns():
            assert turn.heard_ms <= turn.sent_ms + 1e-9, (
                turn.reply_id,
                turn.heard_ms,
                turn.sent_ms,
            )

    @invariant()
    def heard_text_is_a_word_prefix_of_generated(self) -> None:
        for turn in self.agent_turns():
            heard = turn.heard_text.split()
            assert heard == turn.generated_text.split()[: len(heard)], (heard, turn.generated_text)

    def heard_never_shrinks(self) -> None:
        for turn in self.agent_turns():
            words = turn.heard_text.split()
            before_ms, before_words = self.last_seen.get(turn.reply_id, (0.0, []))
            assert turn.heard_ms >= before_ms, (turn.reply_id, before_ms, turn.heard_ms)
            assert words[: len(before_words)] == before_words, (before_words, words)
            self.last_seen[turn.reply_id] = (turn.heard_ms, words)

    @invariant()
    def context_agent_turns_are_the_heard_text(self) -> None:
        heard = [t.heard_text for t in self.agent_turns() if t.heard_text or t.interrupted]
        context = [m.content for m in context_messages(self.heard) if m.role == "assistant"]
        assert context == heard

    @invariant()
    def context_holds_no_word_the_caller_did_not_hear(self) -> None:
        """Each word of each agent turn in the LLM's context ended before the caller's true
        play head (where the reply was cut, or where playback is now)."""
        in_context = [t for t in self.agent_turns() if t.heard_text or t.interrupted]
        messages = [m.content for m in context_messages(self.heard) if m.role == "assistant"]
        for turn, content in zip(in_context, messages, strict=True):
            played = self.played_at_cut.get(turn.reply_id, self.played_ms)
            words = content.replace(INTERRUPTED_MARKER, "").split()
            placed = self.replies[turn.reply_id].placed if turn.reply_id in self.replies else []
            for word in placed[: len(words)]:
                assert word.out_end_ms <= played + 1e-6, (word, played, content)

    def teardown(self) -> None:
        self.folding_a_prefix_then_the_rest_equals_folding_all()

    def folding_a_prefix_then_the_rest_equals_folding_all(self) -> None:
        """Checked once per history (at every step it would cost O(n^2)), at several splits;
        the incremental state itself is a prefix-then-rest fold at every step."""
        everything = heard_projection.fold_all(self.events)
        assert everything == self.heard
        for split in {1, len(self.events) // 3, len(self.events) // 2, len(self.events) - 1}:
            prefix = heard_projection.fold_all(self.events[:split])
            assert heard_projection.fold_all(self.events[split:], prefix) == everything, split

    @invariant()
    def events_round_trip_through_the_codec(self) -> None:
        for event in self.events[self.checked_upto :]:
            payload = codec.encode(event)
            again = codec.decode(event.call_sid, event.seq, type(event).__name__, 1, payload)
            assert again == event, (event, again)
        self.checked_upto = len(self.events)
