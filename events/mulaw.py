"""G.711 mu-law, the phone's audio code: 8-bit codes to 16-bit PCM and back, by table.

Here, at the bottom of the house, because retained call audio is stored as
mu-law (``AudioRetained``): the projections that turn it back into sound, and
the actors at the call's edges, both use it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm16 = npt.NDArray[np.int16]


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
