"""The production voice: Sesame CSM-1B through transformers, loaded from a local path.

``EARSHOT_TTS_MODEL=/models/csm-1b`` (a directory with the model and its
processor, as ``save_pretrained`` writes it; no hub download at run time) makes
the gateway speak with CSM instead of the embedded voice. On a GPU it runs in
bfloat16; on a CPU in float32 (for tests with a tiny model: real CSM is far
slower than real time there).

CSM generates audio frame by frame (one Mimi frame = 80 ms: a backbone step for
the first codebook, then the depth decoder for the rest). A streamer receives
each frame as it is generated; every ``chunk_frames`` frames the codes so far are
decoded by the Mimi codec and the new samples are handed on, so the first audio
exists after a few frames, not after the phrase. The streamer also checks
``should_stop`` at every step and aborts generation by raising (transformers
ignores custom stopping criteria for CSM, measured): cancellation stops it
within one frame.

Conversation context (pitfall 5: CSM needs it for prosody): the caller passes the
phrases already spoken in this reply; they go in front of the new text as earlier
turns of the same speaker, text and audio, as CSM was trained.

Word timings are estimated like the embedded voice's (loud span shared by letter
counts): CSM exposes no alignment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from actors.core.audio_formats import Float32
from actors.engines.speech_synthesis import Phrase, estimate_words, sanitize_for_speech

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Raised inside generation to stop it (cancelled, or nobody reads the audio)."""


class CsmEngine:
    """``synthesize``/``stream`` are thread-safe and bounded to ``concurrency`` at once."""

    rate = 24000

    def __init__(
        self,
        path: str,
        device: str | None = None,
        speaker: int = 0,
        max_phrase_s: float = 15.0,
        chunk_frames: int = 4,
        concurrency: int = 1,
    ) -> None:
        import torch
        import transformers

        hf: Any = transformers  # partly typed; its from_pretrained methods are not

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        if self.device == "cpu":  # torch's default pool would take every core from the calls
            torch.set_num_threads(1)
        log.info("loading CSM from %s on %s (%s)", path, self.device, dtype)
        self.processor: Any = hf.AutoProcessor.from_pretrained(path)
        self.model: Any = hf.CsmForConditionalGeneration.from_pretrained(path, dtype=dtype)
        self.model.to(self.device).eval()
        codec = self.model.config.codec_config
        self.frame_rate = float(codec.frame_rate)
        self.codebook_size = int(codec.codebook_size)
        self.speaker = speaker
        self.max_frames = int(max_phrase_s * self.frame_rate)
        self.chunk_frames = chunk_frames
        self._slots = threading.BoundedSemaphore(concurrency)
        log.info("CSM ready (%.1f frames/s)", self.frame_rate)

    def _inputs(self, text: str, context: Sequence[Phrase]) -> Any:
        turns = [
            f"<|begin_of_text|>[{self.speaker}]{p.text}<|end_of_text|><|AUDIO|><|audio_eos|>"
            for p in context
        ]
        prompt = "".join(turns) + f"<|begin_of_text|>[{self.speaker}]{text}<|end_of_text|>"
        audio = [p.samples for p in context] if context else None
        return self.processor(text=[prompt], audio=audio, return_tensors="pt").to(self.device)

    def stream(
        self,
        text: str,
        context: Sequence[Phrase] = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> Generator[Float32, None, None]:
        """Audio chunks (24 kHz float32) as they are generated. Runs generation on this
        thread, in steps: each chunk is yielded between steps."""
        torch = self._torch
        from transformers.generation.streamers import BaseStreamer

        frames: list[Any] = []
        chunks: list[Float32] = []
        emitted = [0]
        abandoned = threading.Event()  # the consumer stopped reading: stop generating
        engine = self

        class Frames(BaseStreamer):
            prompt_seen = False

            def put(self, value: Any) -> None:
                if abandoned.is_set() or (should_stop is not None and should_stop()):
                    raise _Stopped  # between steps: ends generate() at once
                if not self.prompt_seen:  # generate() first hands over the prompt
                    self.prompt_seen = True
                    return
                frames.append(value[0])  # (codebooks,): one frame of one sequence
                if len(frames) % engine.chunk_frames == 0:
                    chunks.append(engine._decode_new(frames, emitted))

            def end(self) -> None:
                chunks.append(engine._decode_new(frames, emitted))

        inputs = self._inputs(sanitize_for_speech(text), context)
        with self._slots, torch.inference_mode():
            # transformers' generate owns the loop; a step is one frame. Chunks are
            # produced inside it (the streamer) and handed out after it returns when
            # run synchronously, so generation runs in a helper thread and this
            # generator relays the chunks as they appear.
            done = threading.Event()
            failure: list[BaseException] = []

            def generate() -> None:
                try:
                    self.model.generate(
                        **inputs,
                        max_new_tokens=self.max_frames,
                        streamer=Frames(),
                        do_sample=True,
                    )
                except _Stopped:
                    pass
                except BaseException as exc:  # re-raised on the caller's thread
                    failure.append(exc)
                finally:
                    done.set()

            worker = threading.Thread(target=generate, name="csm-generate", daemon=True)
            worker.start()
            try:
                while not done.wait(0.005) or chunks:
                    while chunks:
                        chunk = chunks.pop(0)
                        if len(chunk):
                            yield chunk
            finally:
                abandoned.set()
                worker.join()
        if failure:
            raise failure[0]

    def _decode_new(self, frames: list[Any], emitted: list[int]) -> Float32:
        """Decode all frames so far (Mimi is causal: earlier samples do not change) and
        return the samples not yet emitted. Frames after an end-of-audio frame are cut."""
        torch = self._torch
        codes = torch.stack(frames)  # (frames, codebooks)
        ended = (codes == self.model.config.codebook_eos_token_id).all(dim=-1).nonzero()
        if ended.numel():
            codes = codes[: int(ended.min())]
        if len(codes) == 0:
            return np.zeros(0, dtype=np.float32)
        codes = codes.clamp(0, self.codebook_size - 1)  # the pad/eos ids are not audio
        audio = self.model.codec_model.decode(codes.transpose(0, 1).unsqueeze(0)).audio_values
        samples: Float32 = audio[0, 0].float().cpu().numpy().astype(np.float32)
        new = samples[emitted[0] :]
        emitted[0] = len(samples)
        return new

    def synthesize(
        self,
        text: str,
        speed: float = 1.0,
        *,
        context: Sequence[Phrase] = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> Phrase:
        """A whole phrase, generated by ``stream`` (the Tts streams it instead)."""
        return self.phrase_of(text, list(self.stream(text, context, should_stop)))

    def phrase_of(self, text: str, pieces: Sequence[Float32]) -> Phrase:
        """The phrase ``stream`` produced in ``pieces``, with its words placed in the audio."""
        text = sanitize_for_speech(text)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        words = estimate_words(text, "", samples, self.rate, 0.0)
        return Phrase(text, samples, self.rate, tuple(words))
