"""Worked examples of the Metrics projection: each latency spans the events that bound it."""

from __future__ import annotations

import itertools
from typing import Any

from events.catalogue import (
    AudioSent,
    Event,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    SpeechStopped,
    SpeechSynthesized,
    ToolCalled,
    TranscriptFinal,
)
from projections import metrics

SEQ = itertools.count(1)


def at(ms: float, kind: type[Event], **fields: Any) -> Event:
    return kind(call_sid="CA1", seq=next(SEQ), at_ms=ms, **fields)


def synthesized(ms: float, reply_id: int, text: str) -> Event:
    return at(
        ms,
        SpeechSynthesized,
        reply_id=reply_id,
        segment=0,
        text=text,
        words=(),
        audio_ms=900.0,
        out_start_ms=0.0,
    )


def fixed_line(ms: float, reply_id: int, reason: str, text: str) -> list[Event]:
    """A line the agent says as written, recorded as generated whole at once."""
    return [
        at(ms, ReplyRequested, reply_id=reply_id, reason=reason),
        at(ms, ReplyTextGenerated, reply_id=reply_id, text=text),
        at(ms, ReplyCompleted, reply_id=reply_id, finish_reason="stop"),
        synthesized(ms + 40.0, reply_id, text),
        at(ms + 45.0, AudioSent, reply_id=reply_id, out_start_ms=0.0, out_end_ms=900.0),
    ]


def answer(stopped_ms: float, reply_id: int, ttft_ms: float) -> list[Event]:
    """The caller stops, the transcript lands 150 ms later, the model answers."""
    asked = stopped_ms + 160.0
    return [
        at(stopped_ms, SpeechStopped, inbound_ms=stopped_ms, speech_ms=1500.0),
        at(stopped_ms + 150.0, TranscriptFinal, turn=reply_id, text="A table for two"),
        at(asked, ReplyRequested, reply_id=reply_id, reason=metrics.ANSWER_REASON),
        at(asked + ttft_ms, ReplyTextGenerated, reply_id=reply_id, text="Sure."),
        synthesized(asked + ttft_ms + 200.0, reply_id, "Sure."),
        at(asked + ttft_ms + 210.0, AudioSent, reply_id=reply_id, out_start_ms=0.0, out_end_ms=1),
    ]


def test_fixed_lines_are_not_counted_as_the_models_time_to_first_token() -> None:
    events = (
        fixed_line(0.0, 1, "greeting", "Hello.")
        + answer(3000.0, 2, ttft_ms=400.0)
        + answer(6000.0, 3, ttft_ms=600.0)
        + fixed_line(9000.0, 4, "goodbye", "Goodbye!")
    )
    state = metrics.fold_all(events)
    greeting, first, _second, goodbye = (turn.latencies() for turn in state.turns)
    assert greeting["llm_ttft_ms"] is None and goodbye["llm_ttft_ms"] is None
    assert greeting["tts_first_audio_ms"] == 40.0  # its synthesis still counts
    assert first == {
        "stt_final_ms": 150.0,
        "llm_ttft_ms": 400.0,
        "tts_first_audio_ms": 200.0,
        "response_ms": 160.0 + 400.0 + 210.0,
        "stop_ms": None,
    }
    summary = metrics.summary(state)
    assert summary["llm_ttft_ms_p50"] == 400.0 and summary["llm_ttft_ms_p95"] == 600.0
    assert summary["agent_turns"] == 4 and summary["response_ms_p50"] == 770.0


def test_a_reply_that_must_call_a_tool_counts_the_model_to_its_call() -> None:
    """Such a reply begins with the tool's holding line, recorded at once: the model's own
    first output is the call (``ToolCalled``), 1.2 s later here."""
    asked = 160.0
    events = [
        at(0.0, SpeechStopped, inbound_ms=0.0, speech_ms=1500.0),
        at(150.0, TranscriptFinal, turn=1, text="A table for two at eight, for Ada"),
        at(asked, ReplyRequested, reply_id=1, reason="caller_turn", must_call="book_table"),
        at(asked, ReplyTextGenerated, reply_id=1, text="One moment while I book that."),
        synthesized(asked + 200.0, 1, "One moment while I book that."),
        at(asked + 1200.0, ToolCalled, reply_id=1, call_id="c", name="book_table", arguments=""),
    ]
    (turn,) = metrics.fold_all(events).turns
    assert turn.latencies()["llm_ttft_ms"] == 1200.0
    assert turn.latencies()["tts_first_audio_ms"] == 200.0  # the holding line's synthesis
