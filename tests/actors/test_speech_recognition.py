"""Speech-to-text on phone audio: the packaged Whisper tiny.en after the 8 kHz mu-law round trip."""

from __future__ import annotations

import jiwer
import numpy as np
import pytest

from actors.engines.speech_recognition import WhisperEngine
from actors.engines.speech_synthesis import HibariEngine
from tests.support.voices import as_caller_audio


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split())


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine()


@pytest.mark.parametrize(
    "said",
    [
        "I would like to book a table for two people tomorrow evening.",
        "What time do you open on Saturday?",
        "Can you tell me the price of the large pizza?",
    ],
)
def test_caller_speech_is_transcribed_within_25_percent_wer(
    engine: WhisperEngine, said: str
) -> None:
    phrase = HibariEngine().synthesize(said)
    pcm = as_caller_audio(phrase.samples, phrase.rate)
    transcript = engine.transcribe(pcm)
    error = jiwer.wer(normalise(said), normalise(transcript.text))
    assert error <= 0.25, (said, transcript.text, error)
    assert transcript.audio_ms == pytest.approx(len(pcm) / 16.0)


def test_silence_transcribes_to_nothing_or_says_so(engine: WhisperEngine) -> None:
    transcript = engine.transcribe(np.zeros(16000 * 2, dtype=np.int16))
    assert transcript.text == "" or transcript.no_speech_probability > 0.5


LONG_TURN = [
    "I would like to book a table for two people tomorrow evening.",
    "What time do you open on Saturday?",
    "Can you tell me the price of the large pizza?",
    "My name is Alex and my number is the one I am calling from.",
    "Is there parking near the restaurant?",
    "Please call me back later today.",
    "Do you have a table by the window?",
    "We will be there at seven o'clock sharp.",
]


@pytest.mark.parametrize("sentences", [2, 4, 8])  # about 6 s, 13 s and 24 s of speech
def test_turns_of_every_window_size_are_transcribed(engine: WhisperEngine, sentences: int) -> None:
    """A turn that fits a 10 s or 20 s encoder window is decoded in it; a longer one takes
    faster-whisper's long-form path. All three are transcribed alike."""
    voice = HibariEngine()
    pause = np.zeros(8000, dtype=np.int16)
    parts = []
    for said in LONG_TURN[:sentences]:
        phrase = voice.synthesize(said)
        parts += [as_caller_audio(phrase.samples, phrase.rate), pause]
    pcm = np.concatenate(parts)
    transcript = engine.transcribe(pcm)
    said = " ".join(LONG_TURN[:sentences])
    error = jiwer.wer(normalise(said), normalise(transcript.text))
    print(f"{len(pcm) / 16000:.1f} s turn: WER {error:.3f}")
    assert (len(pcm) > 20 * 16000) == (sentences == 8)  # the last one is past both windows
    assert error <= 0.25, (said, transcript.text, error)
