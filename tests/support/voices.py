"""Test speech: short utterances in two voices (espeak-ng's formant voice and the neural
hibari voice), and speech as a phone call carries it (8 kHz mu-law)."""

from __future__ import annotations

import functools
import io
import subprocess
import wave
from collections.abc import Callable

import numpy as np

from actors.core.audio_formats import InboundConverter, phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from gateway.simulate import voiced_span_s

UTTERANCES = [
    "I would like to book a table",
    "Tomorrow at seven please",
    "Two people",
    "Can you hear me",
    "What time do you open",
    "That sounds good",
    "No thank you",
    "My name is Alex",
    "Is there parking nearby",
    "I need to change my booking",
    "Yes",
    "Please call me back later",
    "How much does it cost",
    "Goodbye",
]


def espeak_ng(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's American English voice: (float samples, rate)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", text],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate


@functools.cache
def hibari_engine() -> HibariEngine:
    return HibariEngine()


def hibari(text: str) -> tuple[np.ndarray, int]:
    phrase = hibari_engine().synthesize(text)
    return phrase.samples, phrase.rate


VOICES: dict[str, Callable[[str], tuple[np.ndarray, int]]] = {
    "espeak-ng": espeak_ng,
    "hibari": hibari,
}


def as_caller_audio(samples: np.ndarray, rate: int) -> np.ndarray:
    """Speech as the STT gets it from a call: 8 kHz mu-law in 20 ms frames -> 16 kHz PCM16."""
    mulaw = phrase_to_mulaw(samples, rate)
    converter = InboundConverter()
    frames = [converter.convert(mulaw[i : i + 160]) for i in range(0, len(mulaw), 160)]
    return np.concatenate(frames)


SILENCE_20MS = b"\xff" * 160


def spoken(*parts: str, pause_ms: int = 0) -> bytes:
    """The parts said one after another, exactly ``pause_ms`` of silence between their
    voices (each part's own leading and trailing silence cut)."""
    voice = hibari_engine()
    audio = [phrase_to_mulaw(p.samples, p.rate) for p in map(voice.synthesize, parts)]
    if len(audio) == 1:
        return audio[0]
    voiced = []
    for mulaw in audio:
        onset_s, end_s = voiced_span_s(mulaw)
        voiced.append(mulaw[int(onset_s * 8000) : int(end_s * 8000)])
    return (SILENCE_20MS * (pause_ms // 20)).join(voiced)
