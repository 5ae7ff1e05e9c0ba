"""Text-to-speech engines, loaded once per process and shared by every call.

The embedded default is hibari-tts (Apache-2.0, a distilled Kokoro voice that
ships inside its wheel, 24 kHz, far faster than real time on one CPU core).

Word timings: hibari does not expose its duration predictor, so the timings are
an estimate, documented here because "heard to the word" rests on them. Each
sentence is synthesized on its own; within it, the span from the first to the
last loud 12.5 ms frame is shared among the words in proportion to their
phoneme counts (punctuation adds a pause's weight). Measured error against
whole-word synthesis is reported in the pipeline issue's note.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from actors.core.audio_formats import Float32
from events.catalogue import WordTiming

log = logging.getLogger(__name__)

_STRESS = re.compile(r"[ˈˌ]")
_PAUSE_WEIGHT = 3.0  # a comma or full stop counts like three phonemes of time


@dataclass(frozen=True)
class Phrase:
    """Synthesized audio for a piece of text, with each word's place in it."""

    text: str
    samples: Float32
    rate: int
    words: tuple[WordTiming, ...]

    @property
    def duration_ms(self) -> float:
        return len(self.samples) * 1000.0 / self.rate


def sanitize_for_speech(text: str, max_chars: int = 600) -> str:
    """Strip what must never reach a TTS: control characters, markup, runaway length."""
    text = re.sub(r"<[^>]{0,200}>", " ", text)  # SSML/HTML tags
    text = re.sub(r"[*_`#~|\[\]{}]", " ", text)  # markdown
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:max_chars]


class SpeechEngine(Protocol):
    """What the Tts actor needs of a voice: a phrase, with the reply's earlier phrases as
    context (for engines that use it) and a cancellation check (between steps)."""

    rate: int

    def synthesize(
        self,
        text: str,
        speed: float = 1.0,
        *,
        context: Sequence[Phrase] = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> Phrase: ...


@runtime_checkable
class StreamingSpeechEngine(SpeechEngine, Protocol):
    """A voice whose audio comes out while the phrase is still being generated (CSM): the
    Tts sends each chunk on at once, and the phrase's words once it is whole."""

    def stream(
        self,
        text: str,
        context: Sequence[Phrase] = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Float32]: ...

    def phrase_of(self, text: str, pieces: Sequence[Float32]) -> Phrase: ...


class HibariEngine:
    """The embedded CPU voice. ``synthesize`` is thread-safe and bounded to ``concurrency``."""

    rate = 24000

    def __init__(self, voice: str = "heart", concurrency: int = 1, threads: int = 1) -> None:
        from hibari import Hibari

        log.info("loading TTS voice %s (hibari-tts, bundled)", voice)
        self._tts: Any = Hibari(voice=voice, threads=threads)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._tts("Warm up.")  # loads the phonemiser now, not on the first call
        log.info("TTS ready")

    def synthesize(
        self,
        text: str,
        speed: float = 1.0,
        *,
        context: Sequence[Phrase] = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> Phrase:
        """Sentence by sentence (hibari takes no context: each phrase stands alone);
        ``should_stop`` is checked between sentences."""
        text = sanitize_for_speech(text)
        pieces: list[Float32] = []
        words: list[WordTiming] = []
        offset_ms = 0.0
        with self._slots:
            for sentence in self._tts.split_sentences(text):
                if should_stop is not None and should_stop():
                    break
                phonemes = " ".join(self._tts.phonemize(sentence))
                audio = trim_silence(
                    np.asarray(self._tts(sentence, speed=speed, seed=0), dtype=np.float32),
                    self.rate,
                )
                words.extend(estimate_words(sentence, phonemes, audio, self.rate, offset_ms))
                pieces.append(audio)
                offset_ms += len(audio) * 1000.0 / self.rate
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return Phrase(text, samples, self.rate, tuple(words))


LEAD_MS, TAIL_MS = 30.0, 150.0


def trim_silence(audio: Float32, rate: int) -> Float32:
    """Cut the voice's silent margins down to ``LEAD_MS`` before and ``TAIL_MS`` after.

    hibari pads every sentence with ~300 ms of silence before and ~450 ms after; the
    caller would hear the first as latency and the second as a drawn-out pause.
    """
    start, end = _loud_span_ms(audio, rate)
    first = int(max(start - LEAD_MS, 0.0) * rate / 1000)
    last = int(min(end + TAIL_MS, len(audio) * 1000.0 / rate) * rate / 1000)
    return audio[first:last]


def _loud_span_ms(audio: Float32, rate: int) -> tuple[float, float]:
    hop = rate // 80  # 12.5 ms
    frames = len(audio) // hop
    if frames == 0:
        return 0.0, len(audio) * 1000.0 / rate
    energy = np.sqrt(np.mean(np.square(audio[: frames * hop].reshape(frames, hop)), axis=1))
    loud = np.nonzero(energy > max(float(energy.max()) * 0.05, 1e-4))[0]
    if len(loud) == 0:
        return 0.0, len(audio) * 1000.0 / rate
    return float(loud[0]) * 12.5, float(loud[-1] + 1) * 12.5


def estimate_words(
    sentence: str, phonemes: str, audio: Float32, rate: int, offset_ms: float
) -> list[WordTiming]:
    text_words = sentence.split()
    if not text_words:
        return []
    phoneme_words = phonemes.split()
    if len(phoneme_words) == len(text_words):
        lengths = [len(_STRESS.sub("", p)) for p in phoneme_words]
    else:  # the phonemiser expanded or merged words: fall back to letters
        lengths = [len(w) for w in text_words]
    weights = [
        max(w, 1) + (_PAUSE_WEIGHT if t[-1] in ",.;:!?" else 0.0)
        for w, t in zip(lengths, text_words, strict=True)
    ]
    start, end = _loud_span_ms(audio, rate)
    scale = (end - start) / sum(weights)
    timings, cursor = [], start
    for word, weight in zip(text_words, weights, strict=True):
        length = weight * scale
        spoken = length - (_PAUSE_WEIGHT * scale if word[-1] in ",.;:!?" else 0.0)
        start_ms = round(float(offset_ms + cursor), 3)
        timings.append(WordTiming(word, start_ms, round(start_ms + float(spoken), 3)))
        cursor += length
    return timings
