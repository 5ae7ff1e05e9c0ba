"""Whether a transcript is too unsure to answer, sans I/O: then the agent asks again.

Answering a misheard turn is worse than asking: the caller said "book a table for two
people tonight", tiny.en wrote "work a table for two to hide", and the model answered
nonsense. Whisper says how sure it was: the mean log probability per token of what it
wrote (low: it was guessing) and how much the text compresses (high: it looped).

``bench/doubt.py`` calibrated the threshold on both test voices (espeak-ng's, which
tiny.en often mishears even clean, and the neural one), clean and in heavy noise or
mumbled, over the phone's 8 kHz mu-law: at -0.8 it asks on 4 % of clear turns and on
half of the degraded ones (57 % of those it got wrong). A turn it asks about is
recorded as ``TurnNotAnswered("unclear")`` with its transcript, so the figures can be
re-measured from real calls. A larger Whisper is surer when right: re-run the bench
with ``EARSHOT_STT_MODEL`` to move the threshold.
"""

from __future__ import annotations

LOGPROB_BELOW = -0.8  # mean token log probability under which a transcript is a guess
COMPRESSION_ABOVE = 2.4  # Whisper's own sign of a decoder repeating itself
CLARIFY = "Sorry, I didn't quite catch that. Could you say it again?"


def unsure(avg_logprob: float, compression_ratio: float) -> bool:
    return avg_logprob < LOGPROB_BELOW or compression_ratio > COMPRESSION_ABOVE
