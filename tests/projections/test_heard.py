"""Worked examples of the Heard and Context projections (the properties generalise them)."""

from __future__ import annotations

from typing import Any

from events.catalogue import (
    AudioSent,
    CallStarted,
    Event,
    MarkPlayed,
    ReplyRequested,
    ReplyTextGenerated,
    ReplyTruncated,
    SpeechSynthesized,
    TranscriptFinal,
    WordTiming,
)
from projections.context import INTERRUPTED_MARKER, context_messages, to_chat
from projections.heard import fold_all
from projections.words import PlacedWord, heard_words


class Call:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: type[Event], **fields: Any) -> Call:
        self.events.append(
            kind(call_sid="CA1", seq=len(self.events) + 1, at_ms=len(self.events) * 10.0, **fields)
        )
        return self


def interrupted_call() -> Call:
    call = Call().add(CallStarted, stream_sid="MZ1", wall_time_unix=0.0)
    call.add(ReplyRequested, reply_id=1, reason="greeting")
    call.add(ReplyTextGenerated, reply_id=1, text="Hello, thanks for")
    call.add(ReplyTextGenerated, reply_id=1, text=" calling Earshot.")
    words = (
        WordTiming("Hello,", 0, 400),
        WordTiming("thanks", 450, 800),
        WordTiming("for", 820, 1000),
        WordTiming("calling", 1020, 1500),
        WordTiming("Earshot.", 1550, 2200),
    )
    call.add(
        SpeechSynthesized,
        reply_id=1,
        segment=0,
        text="Hello, thanks for calling Earshot.",
        words=words,
        audio_ms=2200.0,
        out_start_ms=500.0,
    )
    call.add(AudioSent, reply_id=1, out_start_ms=500.0, out_end_ms=1900.0)
    call.add(MarkPlayed, name="w0", reply_id=1, out_ms=900.0)
    call.add(
        ReplyTruncated,
        reply_id=1,
        heard_ms=900.0,
        heard_lower_ms=885.0,
        heard_upper_ms=915.0,
    )
    call.add(TranscriptFinal, turn=1, text="I need to move my appointment")
    return call


def test_truncated_turn_heard_to_the_word() -> None:
    state = fold_all(interrupted_call().events)
    agent = state.agent_turns()[0]
    assert (agent.out_start_ms, agent.out_end_ms, agent.heard_ms) == (500.0, 1900.0, 900.0)
    assert agent.heard() == ("Hello, thanks", "for")
    assert agent.interrupted and agent.generated_text == "Hello, thanks for calling Earshot."


def test_context_holds_only_heard_text_and_marks_the_cut() -> None:
    messages = context_messages(fold_all(interrupted_call().events))
    assert [(m.role, m.content, m.interrupted) for m in messages] == [
        ("assistant", "Hello, thanks", True),
        ("user", "I need to move my appointment", False),
    ]
    chat = to_chat(messages, "You are a receptionist.")
    assert chat[1] == {"role": "assistant", "content": f"Hello, thanks {INTERRUPTED_MARKER}"}
    assert "calling" not in str(chat)


def test_marks_alone_credit_only_what_played() -> None:
    state = fold_all(interrupted_call().events[:7])  # up to the first mark echo, no clear
    agent = state.agent_turns()[0]
    assert agent.heard_ms == 400.0 and agent.heard_text == "Hello," and not agent.interrupted


def test_word_cut_exactly_at_its_end_counts_as_heard() -> None:
    words = [PlacedWord("a", 0, 100), PlacedWord("b", 100, 200)]
    assert heard_words(words, 100.0) == ("a", "")
    assert heard_words(words, 99.9) == ("", "a")
    assert heard_words(words, 250.0) == ("a b", "")
