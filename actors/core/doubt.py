"""Whether a transcript is too unsure to answer, sans I/O: then the agent asks again.

Answering a misheard turn is worse than asking: the caller said "book a table for two
people tonight", tiny.en wrote "work a table for two to hide", and the model answered
nonsense. Whisper says how sure it was: the mean log probability per token of what it
wrote (low: it was guessing all along), the least likely token it chose (low: one word
was a guess in an otherwise sure sentence), and how much the text compresses (high: it
looped).

``bench/doubt.py`` calibrated both thresholds on both test voices (espeak-ng's, which
tiny.en often mishears even clean, and the neural one), clear, in street noise at 0 and
-5 dB and mumbled, over the phone's 8 kHz mu-law: it asks on 4 % of clear turns, 89 %
of mumbled ones and, in noise, on about two in three of the turns it got wrong. A turn
it asks about is recorded as ``TurnNotAnswered("unclear")`` with its transcript and
scores, so the figures can be re-measured from real calls. A larger Whisper is surer
when right: re-run the bench with ``EARSHOT_STT_MODEL`` to move the thresholds.
"""

from __future__ import annotations

from typing import Protocol

LOGPROB_BELOW = -0.8  # mean token log probability under which a transcript is a guess
WEAKEST_TOKEN_BELOW = -1.6  # a single token this unlikely: one word was a guess
COMPRESSION_ABOVE = 2.4  # Whisper's own sign of a decoder repeating itself
CLARIFY = "Sorry, I didn't quite catch that. Could you say it again?"


class Scored(Protocol):
    """How sure the recogniser was of a transcript (Whisper's own measures)."""

    @property
    def avg_logprob(self) -> float: ...
    @property
    def weakest_token_logprob(self) -> float: ...
    @property
    def compression_ratio(self) -> float: ...


def unsure(transcript: Scored) -> bool:
    return (
        transcript.avg_logprob < LOGPROB_BELOW
        or transcript.weakest_token_logprob < WEAKEST_TOKEN_BELOW
        or transcript.compression_ratio > COMPRESSION_ABOVE
    )
