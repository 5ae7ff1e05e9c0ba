"""The Liveness projection's gaps inside an answer: which quiet counts, and how long."""

from __future__ import annotations

from typing import Any

from events.catalogue import (
    AudioSent,
    Event,
    ReplyCompleted,
    ReplyRequested,
    SpeechStarted,
    SpeechStopped,
    ToolCalled,
    ToolResult,
)
from projections.liveness import LiveLiveness, Liveness, fold_all

SEQ = iter(range(1, 10_000))


def at(kind: type[Event], at_ms: float, **fields: Any) -> Event:
    return kind(call_sid="CA1", seq=next(SEQ), at_ms=at_ms, **fields)


def frames(reply_id: int, start_ms: float, count: int) -> list[Event]:
    return [
        at(AudioSent, start_ms + 20 * i, reply_id=reply_id, out_start_ms=0.0, out_end_ms=20.0)
        for i in range(count)
    ]


def test_a_quiet_inside_an_answer_is_a_gap_and_past_the_bound_dead_air() -> None:
    events = [
        at(ReplyRequested, 0.0, reply_id=3),
        *frames(3, 100.0, 10),  # its holding line, frames back to back: no gap
        at(ToolCalled, 400.0, reply_id=3, call_id="c1", name="book", arguments="{}"),
        at(ToolResult, 2_000.0, reply_id=3, call_id="c1", name="book", result="{}", ms=1.0),
        *frames(3, 3_400.0, 5),  # the confirmation, 3.1 s after the last frame
        at(ReplyCompleted, 3_500.0, reply_id=3, finish_reason="stop"),
        *frames(3, 3_600.0, 2),  # the model is done: no more gaps owed
        *frames(3, 9_000.0, 2),
    ]
    state = fold_all(events, Liveness(bound_ms=2_500.0))
    assert state.reply_gaps_ms == (3_400.0 - 280.0 - 20.0,)  # from its last frame's end
    assert state.silent_gaps() == (3_100.0,)
    assert state.sounding is None and not state.tools_running


def test_a_holding_line_ends_a_gap_and_the_quiet_after_it_is_not_one() -> None:
    events = [
        at(ReplyRequested, 0.0, reply_id=3),
        *frames(3, 100.0, 5),  # 100..180
        *frames(4, 1_400.0, 50),  # the holding line (reply 4, said whole), 1.2 s in
        *frames(3, 6_000.0, 5),  # the answer, 3.4 s after the holding line: the give-up's
    ]
    assert fold_all(events).reply_gaps_ms == (1_400.0 - 180.0 - 20.0,)


def test_fixed_lines_and_the_callers_own_speech_are_no_gaps() -> None:
    events = [
        at(ReplyRequested, 0.0, reply_id=1, reason="greeting"),
        at(ReplyCompleted, 0.0, reply_id=1, finish_reason="stop"),
        *frames(1, 100.0, 3),
        *frames(1, 5_000.0, 3),  # a fixed line (complete from the start): never owed more
        at(ReplyRequested, 6_000.0, reply_id=2),
        *frames(2, 6_100.0, 3),
        at(SpeechStarted, 6_200.0, inbound_ms=6_200.0),  # the caller talks over it...
        at(SpeechStopped, 9_000.0, inbound_ms=9_000.0, speech_ms=2_800.0),
        *frames(2, 9_500.0, 1),  # ...and the quiet counts from their stop
    ]
    assert fold_all(events).reply_gaps_ms == (480.0,)


def test_the_live_projection_says_once_when_an_answer_begins_to_sound() -> None:
    calls: list[int] = []
    live = LiveLiveness(on_sounding=lambda: calls.append(1))
    for event in [at(ReplyRequested, 0.0, reply_id=4), *frames(4, 50.0, 5), *frames(9, 200, 2)]:
        live.fold(event)
    assert calls == [1] and live.state.sounding == 4 and live.state.sounding_audio_ms == 130.0
