"""The call's audio formats, converted once at each edge (pitfall 2).

    caller: Twilio mu-law 8 kHz -decode-> PCM16 8 kHz -soxr QQ, streaming-> PCM16 16 kHz (VAD, STT)
    agent:  TTS float32 at its own rate -soxr HQ, per phrase-> 8 kHz -encode-> mu-law (Twilio)

Why these soxr settings (measured in tests/actors/test_audio_formats.py and
bench/audio_path.py): a streaming resampler holds samples back to run its
filter. soxr's HQ holds back about 89 ms at 8->16 kHz, LQ/MQ 47-75 ms; QQ (cubic)
holds back 0.25 ms, which is what a 20 ms inbound frame can afford. Outbound
audio arrives a whole phrase at a time, so it is resampled in one call with HQ
(a real anti-alias filter for the 24->8 kHz decimation), which holds nothing back.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

TWILIO_RATE = 8000
PIPELINE_RATE = 16000
FRAME_MS = 20
MULAW_FRAME_BYTES = TWILIO_RATE * FRAME_MS // 1000  # 160 bytes of mu-law = 20 ms
BYTES_PER_MS = TWILIO_RATE // 1000  # 8: the outbound stream's ms <-> byte ratio
INBOUND_QUALITY = "QQ"
OUTBOUND_QUALITY = "HQ"

Pcm16 = npt.NDArray[np.int16]
Float32 = npt.NDArray[np.float32]


def _mulaw_decode_table() -> Pcm16:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _mulaw_encode_table() -> npt.NDArray[np.uint8]:
    samples = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    table = np.empty(65536, dtype=np.uint8)
    table[samples.astype(np.uint16)] = code  # index by the int16's bit pattern
    return table


MULAW_DECODE = _mulaw_decode_table()
MULAW_ENCODE = _mulaw_encode_table()


def mulaw_to_pcm16(payload: bytes) -> Pcm16:
    return MULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def pcm16_to_mulaw(samples: Pcm16) -> bytes:
    return MULAW_ENCODE[samples.view(np.uint16)].tobytes()


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


def rms_dbfs(samples: Pcm16) -> float:
    """Loudness of a frame in dB relative to full scale (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    power = float(np.mean(np.square(samples.astype(np.float32)))) / (32768.0**2)
    return float("-inf") if power <= 0 else 10.0 * float(np.log10(power))
