"""Audio conversions: G.711 mu-law, and resamplers that hold back at most 5 ms."""

from __future__ import annotations

import numpy as np

from actors.core.audio_formats import (
    MULAW_FRAME_BYTES,
    InboundConverter,
    OutboundStream,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    phrase_to_mulaw,
)


def test_mulaw_reference_values() -> None:
    # G.711: 0xFF and 0x7F are (negative and positive) zero; 0x00 / 0x80 the extremes.
    assert mulaw_to_pcm16(b"\xff\x7f\x00\x80").tolist() == [0, 0, -32124, 32124]
    assert pcm16_to_mulaw(np.array([0, 32767, -32768], dtype=np.int16)) == b"\xff\x80\x00"


def test_mulaw_round_trip_error_is_within_one_quantisation_step() -> None:
    samples = np.arange(-32768, 32767, 7, dtype=np.int32).astype(np.int16)
    decoded = mulaw_to_pcm16(pcm16_to_mulaw(samples)).astype(np.int32)
    error = np.abs(decoded - samples.astype(np.int32))
    step = np.maximum(np.abs(samples.astype(np.int32)) // 16, 8)  # mu-law's step grows with level
    assert np.all(error <= step + 132)


def test_inbound_resampler_holds_back_at_most_5_ms() -> None:
    converter = InboundConverter()
    frames = 50
    produced = sum(len(converter.convert(b"\x7f" * MULAW_FRAME_BYTES)) for _ in range(frames))
    expected = frames * 320
    held_back_ms = (expected - produced) / 16.0
    assert 0 <= held_back_ms <= 5.0, held_back_ms


def test_inbound_resampler_keeps_timing_of_a_tone_burst() -> None:
    """A click at 200 ms comes out at 200 ms (+/- 5 ms) on the 16 kHz side."""
    pcm = np.zeros(8000, dtype=np.int16)
    pcm[1600:1640] = 20000  # 5 ms burst at 200 ms
    mulaw = pcm16_to_mulaw(pcm)
    converter = InboundConverter()
    out = np.concatenate([converter.convert(mulaw[i : i + 160]) for i in range(0, len(mulaw), 160)])
    peak_ms = np.argmax(np.abs(out.astype(np.int32))) / 16.0
    assert abs(peak_ms - 200.0) <= 5.0, peak_ms


def test_outbound_phrase_resampling_adds_no_delay() -> None:
    rate = 24000
    audio = np.zeros(rate, dtype=np.float32)
    audio[rate // 2 : rate // 2 + 120] = 0.8  # 5 ms burst at 500 ms
    mulaw = phrase_to_mulaw(audio, rate)
    assert len(mulaw) == 8000  # exactly one second: whole frames, nothing held back
    out = mulaw_to_pcm16(mulaw).astype(np.int32)
    peak_ms = np.argmax(np.abs(out)) / 8.0
    assert abs(peak_ms - 502.5) <= 5.0, peak_ms


def test_a_phrase_streamed_in_chunks_comes_out_as_whole_frames_like_the_whole_phrase() -> None:
    rate = 24000
    t = np.arange(int(rate * 0.77)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stream = OutboundStream(rate)
    pieces = [stream.convert(samples[i : i + 7680]) for i in range(0, len(samples), 7680)]
    pieces.append(stream.convert(np.zeros(0, dtype=np.float32), last=True))
    assert all(len(p) % 160 == 0 for p in pieces)
    assert pieces[0], "the first chunk's audio left at once"
    streamed, whole = b"".join(pieces), phrase_to_mulaw(samples, rate)
    assert len(streamed) == len(whole)
    a = mulaw_to_pcm16(streamed).astype(np.float64)
    b = mulaw_to_pcm16(whole).astype(np.float64)
    assert np.sqrt(np.mean((a - b) ** 2)) < 0.02 * np.sqrt(np.mean(b**2))  # no seams
