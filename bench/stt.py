"""Speech-to-text per caller turn: Whisper's 30 s encoder window against the turn's own.

    python -m bench.stt

Every utterance of the VAD corpus and the pipeline bench's questions, spoken by
the neural voice and by espeak-ng, through the 8 kHz mu-law round trip, is
transcribed twice by the engine: through faster-whisper's standard path (every
segment padded to a 30 s window) and through the engine's short window. Prints
WER and P50/P95 time per path, and the speed-up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import jiwer
import numpy as np

from actors.engines.speech_recognition import Transcript, WhisperEngine
from bench.pipeline import QUESTIONS
from tests.support.voices import UTTERANCES, VOICES, as_caller_audio


def normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def phone_turn(samples: np.ndarray, rate: int) -> np.ndarray:
    """As the STT gets a turn: caller audio with 200 ms of pre- and post-roll silence."""
    roll = np.zeros(3200, dtype=np.int16)
    return np.concatenate([roll, as_caller_audio(samples, rate), roll])


def main() -> None:
    engine = WhisperEngine()
    texts = UTTERANCES + QUESTIONS
    paths: dict[str, Callable[[np.ndarray], Transcript]] = {
        "30 s window": lambda pcm: engine._transcribe_long(pcm.astype(np.float32) / 32768.0),
        "turn window": engine.transcribe,
    }
    print(f"STT per turn, {len(texts)} utterances per voice, tiny.en int8 on this CPU:")
    for voice, speak in VOICES.items():
        turns = [phone_turn(*speak(text)) for text in texts]
        medians: dict[str, float] = {}
        for name, transcribe in paths.items():
            hypotheses, times = [], []
            for pcm in turns:
                start = time.perf_counter()
                hypotheses.append(normalise(transcribe(pcm).text))
                times.append((time.perf_counter() - start) * 1000)
            error = jiwer.wer([normalise(t) for t in texts], hypotheses)
            medians[name] = p50 = float(np.percentile(times, 50))
            p95 = float(np.percentile(times, 95))
            print(f"  {voice:9s} {name}: WER {error:.3f}  P50 {p50:4.0f} ms  P95 {p95:4.0f} ms")
        print(
            f"  {voice:9s} speed-up at P50: {medians['30 s window'] / medians['turn window']:.1f}x"
        )


if __name__ == "__main__":
    main()
