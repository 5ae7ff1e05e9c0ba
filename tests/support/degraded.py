"""Caller speech as a phone line carries it, clean or degraded: the doubt corpus.

The test voices' utterances (``tests/support/voices.py``), over 8 kHz mu-law and the
gateway's inbound converter, as the STT receives them, in four conditions: clear (a
quiet line), noisy at 0 and -5 dB SNR (pink-ish street noise), and mumbled (a quiet,
muffled voice, low-passed near 800 Hz, 22 dB down, over noise at 5 dB SNR).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from actors.core.audio_formats import InboundConverter, float_to_pcm16, pcm16_to_mulaw
from tests.support.voices import UTTERANCES, VOICES

CONDITIONS = ("clear", "noisy 0 dB", "noisy -5 dB", "mumbled")


@dataclass(frozen=True)
class Sample:
    condition: str
    voice: str
    text: str
    pcm16k: np.ndarray  # int16, as the STT receives a caller's turn


def street_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish noise (a one-pole low-pass mixed with white): a rumbling street."""
    white = rng.standard_normal(length).astype(np.float32)
    pink = np.zeros_like(white)
    acc = 0.0
    for index, sample in enumerate(white):
        acc = 0.97 * acc + 0.03 * sample
        pink[index] = acc
    noise: np.ndarray = pink / pink.std() + 0.3 * white
    return noise


def _at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    mixed: np.ndarray = speech + gain * noise
    return mixed


def degrade(audio8k: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    noise = street_noise(len(audio8k), rng)
    if condition == "clear":
        return audio8k + 0.001 * noise
    if condition.startswith("noisy"):
        return _at_snr(audio8k, noise, float(condition.split()[1]))
    muffled = soxr.resample(soxr.resample(audio8k, 8000, 1600), 1600, 8000).astype(np.float32)
    muffled = np.pad(muffled, (0, max(0, len(audio8k) - len(muffled))))[: len(audio8k)] * 0.08
    return _at_snr(muffled, noise, 5.0)


def caller_mulaw(voice: str, text: str, condition: str, seed: int = 5) -> bytes:
    """What a caller in ``condition`` sends down the line: 8 kHz mu-law, for a live call."""
    audio = degrade(spoken_line(voice, text), condition, np.random.default_rng(seed))
    return pcm16_to_mulaw(float_to_pcm16(audio))


def over_the_phone(audio8k: np.ndarray) -> np.ndarray:
    """8 kHz float audio as the gateway hands it to the STT: mu-law, then 16 kHz int16."""
    mulaw = pcm16_to_mulaw(float_to_pcm16(audio8k))
    converter = InboundConverter()
    frames = [converter.convert(mulaw[i : i + 160]) for i in range(0, len(mulaw) - 159, 160)]
    return np.concatenate(frames).astype(np.int16)


@functools.cache
def spoken_line(voice: str, text: str) -> np.ndarray:
    samples, rate = VOICES[voice](text)
    audio = soxr.resample(samples, rate, 8000).astype(np.float32)
    pad = np.zeros(2400, dtype=np.float32)  # 0.3 s of line either side, as the VAD cuts
    return np.concatenate([pad, audio, pad])


def corpus(conditions: tuple[str, ...] = CONDITIONS) -> Iterator[Sample]:
    rng = np.random.default_rng(5)
    for condition in conditions:
        for voice in VOICES:
            for text in UTTERANCES:
                audio = degrade(spoken_line(voice, text), condition, rng)
                yield Sample(condition, voice, text, over_the_phone(audio))


def words(text: str) -> str:
    """A transcript as WER compares it: lower-case words and digits ("-" for nothing)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower())) or "-"
