"""A call's speech detector: the VAD model's stream fed into the pure ``SpeechTurns``, and
the caller's recent audio kept for the STT to slice turns from."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from actors.core.audio_formats import Pcm16, rms_dbfs
from actors.core.speech_turns import SpeechEdge, SpeechTurns
from actors.engines.vad import CHUNK_MS, SileroStream


@dataclass
class SpeechDetector:
    """A call's VAD: its model stream and turn logic, fed 16 kHz PCM of any length.

    ``agent_talking`` is set by the supervisor while a reply holds the floor;
    ``unfinished`` when the words before the caller's pause sound unfinished (the pause
    then ends the turn only after the longer silence), until the caller speaks again or
    the turn ends.
    """

    stream: SileroStream
    turns: SpeechTurns = field(default_factory=SpeechTurns)
    agent_talking: threading.Event = field(default_factory=threading.Event)
    unfinished: threading.Event = field(default_factory=threading.Event)

    def feed(self, pcm: Pcm16) -> list[SpeechEdge]:
        edges = []
        for probability, chunk in self.stream.probabilities(pcm):
            level = rms_dbfs((chunk * 32767).astype(np.int16))
            edge = self.turns.feed(
                probability,
                level,
                CHUNK_MS,
                self.agent_talking.is_set(),
                unfinished=self.unfinished.is_set(),
            )
            if edge is not None:
                if not edge.pause:  # spoken again, or the turn is over: the hold is spent
                    self.unfinished.clear()
                edges.append(edge)
        return edges


class CallerAudioLog:
    """The last ``keep_ms`` of the caller's 16 kHz audio, sliceable by inbound time."""

    def __init__(self, keep_ms: float = 30_000.0) -> None:
        self._chunks: deque[tuple[int, Pcm16]] = deque()  # (first sample index, samples)
        self._total = 0
        self._keep = int(keep_ms * 16)

    def append(self, pcm: Pcm16) -> None:
        self._chunks.append((self._total, pcm))
        self._total += len(pcm)
        while (
            self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) < self._total - self._keep
        ):
            self._chunks.popleft()

    @property
    def end_ms(self) -> float:
        """Where the audio appended so far ends, on the caller's clock."""
        return self._total / 16.0

    def slice(self, start_ms: float, end_ms: float) -> Pcm16:
        start, end = int(max(start_ms, 0) * 16), int(end_ms * 16)
        parts = [
            pcm[max(start - first, 0) : max(end - first, 0)]
            for first, pcm in self._chunks
            if first + len(pcm) > start and first < end
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
