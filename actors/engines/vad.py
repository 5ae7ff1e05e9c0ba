"""Voice activity: silero-vad's packaged ONNX model, run with onnxruntime and numpy alone.

The model ships inside the ``silero-vad`` wheel; torch is only its install-time
dependency (pinned to the CPU build). One ``SileroVadModel`` per process is shared
by all calls (``InferenceSession.run`` is thread-safe); each call keeps its own
``SileroStream``: the recurrent state, the last 64 samples of context, and any
partial 32 ms chunk.
"""

from __future__ import annotations

import importlib.resources
import logging

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from actors.core.audio_formats import Pcm16

log = logging.getLogger(__name__)

RATE = 16000
CHUNK = 512  # 32 ms at 16 kHz: the model's step
CONTEXT = 64
CHUNK_MS = CHUNK * 1000 / RATE


class SileroVadModel:
    def __init__(self, threads: int = 1) -> None:
        path = importlib.resources.files("silero_vad") / "data" / "silero_vad.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        log.info("VAD ready (silero-vad, packaged ONNX)")

    def stream(self) -> SileroStream:
        return SileroStream(self)


class SileroStream:
    """One call's view of the model: 16 kHz PCM of any length in, a probability per chunk out."""

    def __init__(self, model: SileroVadModel) -> None:
        self._session = model.session
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._rate = np.array(RATE, dtype=np.int64)

    def probabilities(self, pcm: Pcm16) -> list[tuple[float, npt.NDArray[np.float32]]]:
        """(speech probability, the chunk's samples as float) for each complete 32 ms chunk."""
        samples = np.concatenate([self._pending, pcm.astype(np.float32) / 32768.0])
        results = []
        whole = len(samples) - len(samples) % CHUNK
        for start in range(0, whole, CHUNK):
            chunk = samples[start : start + CHUNK]
            window = np.concatenate([self._context, chunk[np.newaxis, :]], axis=1)
            output, self._state = self._session.run(
                None, {"input": window, "state": self._state, "sr": self._rate}
            )
            self._context = window[:, -CONTEXT:]
            results.append((float(output[0][0]), chunk))
        self._pending = samples[whole:]
        return results
