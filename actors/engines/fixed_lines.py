"""Lines a call says without its Tts actor: the holding phrase and the fallback.

They are said exactly when a stage is slow or stuck, possibly the Tts itself, or
the CPU is saturated, so they must not wait for synthesis: each is synthesized
once per process (at start-up) and kept as phone audio, ready to be queued
straight into the call's playout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import SpeechEngine
from events.catalogue import WordTiming


@dataclass(frozen=True)
class RenderedLine:
    text: str
    mulaw: bytes
    words: tuple[WordTiming, ...]

    @property
    def audio_s(self) -> float:
        return len(self.mulaw) / 8000.0  # 8 kHz mu-law: a byte a sample

    @property
    def speech_s(self) -> float:
        """Until its last word ends (its audio goes on in silence a little longer)."""
        return self.words[-1].end_ms / 1000.0 if self.words else self.audio_s


class FixedLines:
    """Thread-safe cache of rendered lines, shared by every call of the process."""

    def __init__(self, engine: SpeechEngine) -> None:
        self._engine = engine
        self._lines: dict[str, RenderedLine] = {}
        self._lock = threading.Lock()

    def prepare(self, *texts: str) -> None:
        for text in texts:
            self.get(text)

    def get(self, text: str) -> RenderedLine:
        with self._lock:
            line = self._lines.get(text)
        if line is None:
            phrase = self._engine.synthesize(text)
            line = RenderedLine(text, phrase_to_mulaw(phrase.samples, phrase.rate), phrase.words)
            with self._lock:
                self._lines.setdefault(text, line)
        return line
