"""A long call's events, as a gateway would store them, for the call page's size test.

Every ``every_s`` the caller speaks for 2 s and the agent answers with a 12-word reply
(300 ms a word, a mark echoed at each word's end); every third reply is cut after its
sixth word (barge-in, clear, flushed marks, truncation). Thirty minutes of this is
about 2,200 words and 2,200 marks, what a real half-hour call holds.
"""

from __future__ import annotations

import itertools
from typing import Any

from events.catalogue import (
    AudioSent,
    BargeInDetected,
    CallEnded,
    CallStarted,
    ClearSent,
    Event,
    MarkFlushed,
    MarkPlayed,
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

WORDS = [
    "we",
    "are",
    "open",
    "from",
    "noon",
    "until",
    "ten",
    "every",
    "day",
    "and",
    "booking",
    "helps",
]
WORD_MS = 300.0


def long_call(minutes: float, every_s: float = 10.0, call_sid: str = "CALONG") -> list[Event]:
    seq = itertools.count(1)
    events: list[Event] = []

    def add(at_ms: float, kind: type[Event], **fields: Any) -> None:
        events.append(kind(call_sid=call_sid, seq=next(seq), at_ms=at_ms, **fields))

    add(0.0, CallStarted, stream_sid="MZLONG", wall_time_unix=0.0)
    out_ms = 0.0
    for turn in range(1, int(minutes * 60 / every_s) + 1):
        t = turn * every_s * 1000.0
        add(t, SpeechStarted, inbound_ms=t)
        add(t + 2300.0, SpeechStopped, inbound_ms=t + 2000.0, speech_ms=2000.0)
        text = f"question number {turn} about the table"
        add(
            t + 2400.0,
            TranscriptFinal,
            turn=turn,
            text=text,
            inbound_start_ms=t,
            inbound_end_ms=t + 2000.0,
        )
        add(t + 2410.0, ReplyRequested, reply_id=turn, reason="caller_turn")
        add(t + 2700.0, ReplyTextGenerated, reply_id=turn, text=" ".join(WORDS))
        timings = tuple(
            WordTiming(word, i * WORD_MS, (i + 1) * WORD_MS - 40.0) for i, word in enumerate(WORDS)
        )
        audio_ms = len(WORDS) * WORD_MS
        add(
            t + 2800.0,
            SpeechSynthesized,
            reply_id=turn,
            segment=0,
            text=" ".join(WORDS),
            words=timings,
            audio_ms=audio_ms,
            out_start_ms=out_ms,
        )
        add(t + 2810.0, AudioSent, reply_id=turn, out_start_ms=out_ms, out_end_ms=out_ms + audio_ms)
        played = 6 if turn % 3 == 0 else len(WORDS)
        for i, word in enumerate(timings[:played]):
            end = out_ms + word.end_ms
            add(
                t + 2900.0 + word.end_ms, MarkPlayed, name=f"m{turn}-{i}", reply_id=turn, out_ms=end
            )
        if played < len(WORDS):
            cut_ms = played * WORD_MS + 100.0
            cut_at = t + 2900.0 + cut_ms
            add(cut_at - 150.0, BargeInDetected, reply_id=turn, inbound_ms=cut_at - 150.0)
            add(cut_at, ClearSent, reply_id=turn, out_sent_ms=out_ms + audio_ms)
            for i in range(played, len(WORDS)):
                add(
                    cut_at + 30.0,
                    MarkFlushed,
                    name=f"m{turn}-{i}",
                    reply_id=turn,
                    out_ms=out_ms + timings[i].end_ms,
                )
            add(
                cut_at + 40.0,
                ReplyTruncated,
                reply_id=turn,
                heard_ms=cut_ms,
                heard_lower_ms=cut_ms - 30.0,
                heard_upper_ms=cut_ms + 30.0,
            )
        add(t + 2900.0 + audio_ms, ReplyCompleted, reply_id=turn, finish_reason="stop")
        out_ms += audio_ms
    add(events[-1].at_ms + 1000.0, CallEnded, reason="caller hung up")
    return events
