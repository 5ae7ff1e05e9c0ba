"""``earshot replay --audio``'s timeline, from hand-made events (times known exactly)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from actors.core.audio_formats import pcm16_to_mulaw
from events.catalogue import (
    AudioRetained,
    AudioSent,
    CallStarted,
    Event,
    MarkPlayed,
    ReplyRequested,
    ReplyTruncated,
    SpeechSynthesized,
    WordTiming,
)
from projections import heard_audio


def tone(ms: int) -> bytes:
    samples = np.arange(ms * 8)
    return pcm16_to_mulaw((8000 * np.sin(samples * 2 * np.pi * 440 / 8000)).astype(np.int16))


def call(consent: bool = True) -> list[Event]:
    seq = iter(range(1, 100))

    def at(ms: float, kind: type[Event], **fields: Any) -> Event:
        return kind(call_sid="CA1", seq=next(seq), at_ms=ms, **fields)

    words = (WordTiming("one", 0.0, 400.0), WordTiming("two", 500.0, 1000.0))
    return [
        at(0.0, CallStarted, stream_sid="MZ1", wall_time_unix=0.0, recording_consent=consent),
        at(10.0, AudioRetained, track="caller", start_ms=0.0, mulaw=tone(1000)),
        at(1000.0, ReplyRequested, reply_id=1),
        at(
            1100.0,
            SpeechSynthesized,
            reply_id=1,
            segment=0,
            text="one two",
            words=words,
            audio_ms=1000.0,
            out_start_ms=0.0,
        ),
        at(1100.0, AudioRetained, track="agent", start_ms=0.0, mulaw=tone(1000), reply_id=1),
        at(1100.0, AudioSent, reply_id=1, out_start_ms=0.0, out_end_ms=1000.0),
        # The caller heard out 0..400 between 1,500 and 1,900 ms on our receive clock.
        at(1700.0, MarkPlayed, name="m200", reply_id=1, out_ms=200.0),
        at(1900.0, MarkPlayed, name="m400", reply_id=1, out_ms=400.0),
        at(
            2000.0,
            ReplyTruncated,
            reply_id=1,
            heard_ms=500.0,
            heard_lower_ms=480.0,
            heard_upper_ms=520.0,
        ),
    ]


def loud_ms(track: np.ndarray) -> list[int]:
    """Which whole 20 ms blocks (by start ms) carry sound."""
    return [
        b * 20 for b in range(len(track) // 160) if np.abs(track[b * 160 : b * 160 + 160]).max()
    ]


def test_the_caller_left_the_agent_right_as_heard_and_when() -> None:
    heard = heard_audio.render(call())
    assert loud_ms(heard.caller) == list(range(0, 1000, 20))
    # Out 0..500 was heard (the truncation's estimate), placed by the marks: 1,500..2,000 ms.
    assert loud_ms(heard.agent) == list(range(1500, 2000, 20))
    assert heard.stereo().shape == (len(heard.caller), 2)


def test_no_consent_no_audio() -> None:
    with pytest.raises(heard_audio.NoAudioRetained):
        heard_audio.render(call(consent=False))
