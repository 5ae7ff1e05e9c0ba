"""The call's audio formats, converted once at each edge (pitfall 2).

    caller: Twilio mu-law 8 kHz -decode-> PCM16 8 kHz -soxr QQ, streaming-> PCM16 16 kHz (VAD, STT)
    agent:  TTS float32 at its own rate -soxr HQ, per phrase-> 8 kHz -encode-> mu-law (Twilio)

Why these soxr settings (measured in tests/actors/test_audio_formats.py and
bench/audio_path.py): a streaming resampler holds samples back to run its
filter. soxr's HQ holds back about 89 ms at 8->16 kHz, LQ/MQ 47-75 ms; QQ (cubic)
holds back 0.25 ms, which is what a 20 ms inbound frame can afford. Outbound
audio arrives a whole phrase at a time, so it is resampled in one call with HQ
(a real anti-alias filter for the 24->8 kHz decimation), which holds nothing back.
The G.711 mu-law codec itself lives with the events (``events.mulaw``): retained call
audio is stored as mu-law, and projections decode it without reaching up into actors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from events.mulaw import Pcm16, mulaw_to_pcm16, pcm16_to_mulaw

__all__ = ["Pcm16", "mulaw_to_pcm16", "pcm16_to_mulaw"]  # the codec, used beside the rates

TWILIO_RATE = 8000
PIPELINE_RATE = 16000
FRAME_MS = 20
MULAW_FRAME_BYTES = TWILIO_RATE * FRAME_MS // 1000  # 160 bytes of mu-law = 20 ms
BYTES_PER_MS = TWILIO_RATE // 1000  # 8: the outbound stream's ms <-> byte ratio
INBOUND_QUALITY = "QQ"
OUTBOUND_QUALITY = "HQ"

Float32 = npt.NDArray[np.float32]


def float_to_pcm16(samples: Float32) -> Pcm16:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


class InboundConverter:
    """Caller mu-law 8 kHz frames -> PCM16 16 kHz, streaming (state kept across frames)."""

    def __init__(self) -> None:
        self._resampler = soxr.ResampleStream(
            TWILIO_RATE, PIPELINE_RATE, 1, dtype="int16", quality=INBOUND_QUALITY
        )

    def convert(self, payload: bytes) -> Pcm16:
        out: Pcm16 = self._resampler.resample_chunk(mulaw_to_pcm16(payload))
        return out

    def silence(self, ms: float) -> Pcm16:
        """Fill an inbound gap with silence, through the same resampler (its state stays whole)."""
        samples = round(ms * TWILIO_RATE / 1000)
        out: Pcm16 = self._resampler.resample_chunk(np.zeros(samples, dtype=np.int16))
        return out


def phrase_to_mulaw(samples: Float32, rate: int) -> bytes:
    """A whole synthesized phrase -> 8 kHz mu-law, padded with silence to whole 20 ms frames."""
    if rate != TWILIO_RATE:
        samples = soxr.resample(samples, rate, TWILIO_RATE, quality=OUTBOUND_QUALITY)
    pcm = float_to_pcm16(np.asarray(samples, dtype=np.float32))
    remainder = len(pcm) % MULAW_FRAME_BYTES
    if remainder:
        pcm = np.concatenate([pcm, np.zeros(MULAW_FRAME_BYTES - remainder, dtype=np.int16)])
    return pcm16_to_mulaw(pcm)


class OutboundStream:
    """A phrase that arrives in chunks (a streaming voice) -> 8 kHz mu-law in whole 20 ms
    frames, as each chunk comes: soxr's HQ filter run as a stream, so chunk boundaries
    leave no seams; samples short of a frame wait for the next chunk, and the last
    chunk (``last``) flushes the filter and pads to a whole frame, as ``phrase_to_mulaw``."""

    def __init__(self, rate: int) -> None:
        self._resampler = (
            soxr.ResampleStream(rate, TWILIO_RATE, 1, dtype="float32", quality=OUTBOUND_QUALITY)
            if rate != TWILIO_RATE
            else None
        )
        self._held = np.zeros(0, dtype=np.int16)

    def convert(self, samples: Float32, last: bool = False) -> bytes:
        chunk = np.asarray(samples, dtype=np.float32)
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk, last=last)
        pcm = np.concatenate([self._held, float_to_pcm16(chunk)])
        whole = len(pcm) - len(pcm) % MULAW_FRAME_BYTES
        if last and whole < len(pcm):
            pcm = np.concatenate([pcm, np.zeros(MULAW_FRAME_BYTES - len(pcm) + whole, np.int16)])
            whole = len(pcm)
        self._held = pcm[whole:]
        return pcm16_to_mulaw(pcm[:whole])


def rms_dbfs(samples: Pcm16) -> float:
    """Loudness of a frame in dB relative to full scale (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    power = float(np.mean(np.square(samples.astype(np.float32)))) / (32768.0**2)
    return float("-inf") if power <= 0 else 10.0 * float(np.log10(power))
