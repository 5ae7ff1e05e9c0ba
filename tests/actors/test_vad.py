"""VAD on phone-quality speech in noise: speech-segment F1 per SNR (issue #4, acceptance 3).

The corpus: short utterances with known boundaries (the loud span of each),
spoken by two voices, espeak-ng's formant synthesiser (Debian's ``espeak-ng``)
and the neural TTS voice, separated by 0.6-1.6 s pauses, passed through the 8 kHz
mu-law round trip a phone call applies, with pink-ish noise added at each SNR
(speech power over noise power), then through the gateway's inbound converter
to 16 kHz, exactly as caller audio reaches the VAD.

A true segment counts as found when one detected segment covers at least half
of it (each detection used once); F1 from segment precision and recall.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import numpy as np
import pytest
import soxr

from actors.core.audio_formats import InboundConverter, mulaw_to_pcm16, pcm16_to_mulaw, rms_dbfs
from actors.core.speech_turns import SpeechTurns
from actors.engines.vad import SileroVadModel
from tests.support.degraded import street_noise
from tests.support.voices import UTTERANCES, VOICES

Segments = list[tuple[float, float]]


@functools.cache
def corpus(voice: str) -> tuple[np.ndarray, Segments]:
    """Clean 8 kHz speech with pauses, and the true speech segments (ms)."""
    speak = VOICES[voice]
    rng = random.Random(11)
    pieces: list[np.ndarray] = [np.zeros(8000, dtype=np.float32)]
    truth: Segments = []
    cursor = 8000
    for text in UTTERANCES:
        samples, rate = speak(text)
        audio = soxr.resample(samples, rate, 8000, quality="HQ").astype(np.float32)
        frames = len(audio) // 80
        energy = np.sqrt(np.mean(audio[: frames * 80].reshape(frames, 80) ** 2, axis=1))
        loud = np.nonzero(energy > energy.max() * 10 ** (-35 / 20))[0]
        start, end = loud[0] * 80, (loud[-1] + 1) * 80
        truth.append(((cursor + start) / 8.0, (cursor + end) / 8.0))
        pieces.append(audio)
        cursor += len(audio)
        gap = int(rng.uniform(0.6, 1.6) * 8000)
        pieces.append(np.zeros(gap, dtype=np.float32))
        cursor += gap
    return np.concatenate(pieces), truth


def noisy_phone_audio(clean: np.ndarray, truth: Segments, snr_db: float) -> np.ndarray:
    noise = street_noise(len(clean), np.random.default_rng(int(snr_db) + 100))
    speech = np.concatenate([clean[int(s * 8) : int(e * 8)] for s, e in truth])
    gain = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    mixed = np.clip(clean + gain * noise, -1.0, 1.0)
    pcm = (mixed * 32767).astype(np.int16)
    return mulaw_to_pcm16(pcm16_to_mulaw(pcm))  # the telephone's 8-bit mu-law


def detect(model: SileroVadModel, phone_audio: np.ndarray) -> Segments:
    return _segments(model.stream().probabilities, phone_audio)


def _segments(
    probabilities: Callable[[np.ndarray], list[tuple[float, np.ndarray]]], phone_audio: np.ndarray
) -> Segments:
    """Segments found by ``SpeechTurns`` over ``probabilities``, fed 20 ms Twilio frames."""
    turns, converter = SpeechTurns(), InboundConverter()
    mulaw = pcm16_to_mulaw(phone_audio)
    segments: Segments = []
    start: float | None = None
    for offset in range(0, len(mulaw) - 159, 160):  # 20 ms Twilio frames
        for probability, chunk in probabilities(converter.convert(mulaw[offset : offset + 160])):
            level = rms_dbfs((chunk * 32767).astype(np.int16))
            edge = turns.feed(probability, level, 32.0)
            if edge is not None and edge.started and not edge.resumed:
                start = edge.inbound_ms
            elif edge is not None and not (edge.started or edge.pause) and start is not None:
                segments.append((start, edge.inbound_ms))
                start = None
    if start is not None:
        segments.append((start, len(phone_audio) / 8.0))
    return segments


def segment_f1(truth: Segments, found: Segments) -> float:
    unused = list(found)
    hits = 0
    for t_start, t_end in truth:
        for candidate in unused:
            overlap = min(t_end, candidate[1]) - max(t_start, candidate[0])
            if overlap >= 0.5 * (t_end - t_start):
                hits += 1
                unused.remove(candidate)
                break
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


@pytest.fixture(scope="module")
def model() -> SileroVadModel:
    return SileroVadModel()


REQUIRED_F1 = 0.95  # the README's 1.000, less one missed or extra segment of 14 (F1 0.96)


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("snr_db", [20, 10, 5, 0])
def test_speech_segment_f1_per_snr(model: SileroVadModel, voice: str, snr_db: float) -> None:
    clean, truth = corpus(voice)
    found = detect(model, noisy_phone_audio(clean, truth, snr_db))
    f1 = segment_f1(truth, found)
    print(
        f"{voice} SNR {snr_db:>2} dB: {len(found)} segments found for {len(truth)} true;"
        f" F1 {f1:.3f}"
    )
    assert f1 >= REQUIRED_F1, (voice, snr_db, f1, found, truth)


def test_hum_and_hiss_alone_are_not_speech(model: SileroVadModel) -> None:
    rng = np.random.default_rng(3)
    samples = np.arange(80000)
    hum = 0.05 * np.sin(samples * 2 * np.pi * 120 / 8000) + 0.01 * rng.standard_normal(80000)
    assert detect(model, mulaw_to_pcm16(pcm16_to_mulaw((hum * 32767).astype(np.int16)))) == []


def test_a_cough_is_not_a_turn(model: SileroVadModel) -> None:
    """80 ms of broadband burst: shorter than the minimum speech duration."""
    rng = np.random.default_rng(4)
    audio = np.zeros(16000, dtype=np.float32)
    audio[8000:8640] = rng.standard_normal(640) * 0.5
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    assert detect(model, pcm) == []


class LoudnessGate:
    """The plain energy detector the model must beat: speech = a 32 ms chunk above -35 dBFS.
    It buffers the 20 ms frames it is fed into the model's 512-sample chunks."""

    def __init__(self) -> None:
        self.pending = np.zeros(0, dtype=np.float32)

    def probabilities(self, pcm: np.ndarray) -> list[tuple[float, np.ndarray]]:
        self.pending = np.concatenate([self.pending, np.asarray(pcm, dtype=np.float32) / 32768])
        chunks = []
        while len(self.pending) >= 512:
            chunk, self.pending = self.pending[:512], self.pending[512:]
            loud = rms_dbfs((chunk * 32767).astype(np.int16)) > -35
            chunks.append((1.0 if loud else 0.0, chunk))
        return chunks


@pytest.mark.parametrize("voice", VOICES)
@pytest.mark.parametrize("snr_db", [10, 5, 0])
def test_a_loudness_gate_fails_where_the_model_passes(voice: str, snr_db: float) -> None:
    """The control: the same harness, fed a plain loudness gate, finds speech (so the
    harness works) but scores below the requirement in noise, where the model meets it."""
    clean, truth = corpus(voice)
    gate = LoudnessGate()
    found = _segments(gate.probabilities, noisy_phone_audio(clean, truth, snr_db))
    f1 = segment_f1(truth, found)
    print(f"{voice} loudness gate at SNR {snr_db} dB: {len(found)} segments, F1 {f1:.3f}")
    assert found, "the control found nothing: it is not being fed"
    assert f1 < REQUIRED_F1 - 0.1
