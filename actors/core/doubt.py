"""Whether a transcript is too unsure to answer, sans I/O: then the agent asks again.

Answering a misheard turn is worse than asking: the caller said "book a table for two
people tonight", tiny.en wrote "work a table for two to hide", and the model answered
nonsense. Whisper says how sure it was: the mean log probability per token of what it
wrote (low: it was guessing all along), the least likely token it chose (low: one word
was a guess in an otherwise sure sentence), and how much the text compresses (high: it
looped). Through loud noise it can be sure of a wrong guess, so the line is judged too:
how far the voice rises above its noise.

``bench/doubt.py`` calibrated both thresholds on both test voices (espeak-ng's, which
tiny.en often mishears even clean, and the neural one), clear, in street noise at 0 and
-5 dB and mumbled, over the phone's 8 kHz mu-law: it asks on 4 % of clear turns, 89 %
of mumbled ones, and on every turn in that noise (the recogniser's scores alone caught
about half). The corpus' noise is steady; a street's comes and goes, which the 10th
percentile of a turn's frames still finds between its words. A turn
it asks about is recorded as ``TurnNotAnswered("unclear")`` with its transcript and
scores, so the figures can be re-measured from real calls. A larger Whisper is surer
when right: re-run the bench with ``EARSHOT_STT_MODEL`` to move the thresholds.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

LOGPROB_BELOW = -0.8  # mean token log probability under which a transcript is a guess
WEAKEST_TOKEN_BELOW = -1.6  # a single token this unlikely: one word was a guess
COMPRESSION_ABOVE = 2.4  # Whisper's own sign of a decoder repeating itself
# The voice's loudest frames over the line's quietest, in dB, under which the line is too
# noisy to trust any transcript: street noise at 0 dB SNR measures 8-11, -5 dB 6-8, a
# clear line 38-46 (``bench/doubt.py``); a voice 12 dB over the noise is hard going.
NOISY_BELOW_DB = 12.0
CLARIFY = "Sorry, I didn't quite catch that. Could you say it again?"
CLARIFY_NOISY = "Sorry, it's quite noisy on the line. Could you say that again?"
# Asked this many times in a row, the next turn is answered as heard: a caller on a bad
# line is not asked forever.
CLARIFY_AT_MOST_IN_A_ROW = 2
FRAME_SAMPLES = 320  # 20 ms at 16 kHz


class Scored(Protocol):
    """How sure the recogniser was of a transcript (Whisper's own measures)."""

    @property
    def avg_logprob(self) -> float: ...
    @property
    def weakest_token_logprob(self) -> float: ...
    @property
    def compression_ratio(self) -> float: ...
    @property
    def speech_to_noise_db(self) -> float: ...


def unsure(transcript: Scored) -> bool:
    return (
        transcript.avg_logprob < LOGPROB_BELOW
        or transcript.weakest_token_logprob < WEAKEST_TOKEN_BELOW
        or transcript.compression_ratio > COMPRESSION_ABOVE
        or noisy(transcript)
    )


def noisy(transcript: Scored) -> bool:
    return transcript.speech_to_noise_db < NOISY_BELOW_DB


def speech_to_noise_db(pcm16k: npt.NDArray[np.int16]) -> float:
    """How far the turn's voice rises above the line's noise: the 90th percentile of its
    20 ms frames' energy over the 10th (the gaps between words, and the line either side
    of them, as the VAD cuts a turn), in dB. Whisper's scores stay high on a confident
    guess through loud noise; this does not depend on the recogniser at all."""
    frames = len(pcm16k) // FRAME_SAMPLES
    if frames < 5:
        return float("inf")  # too short to tell: not judged
    samples = pcm16k[: frames * FRAME_SAMPLES].astype(np.float64).reshape(frames, FRAME_SAMPLES)
    energy_db = 10.0 * np.log10(np.mean(samples**2, axis=1) + 1.0)
    return float(np.percentile(energy_db, 90) - np.percentile(energy_db, 10))
