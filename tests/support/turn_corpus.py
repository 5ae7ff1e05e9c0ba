"""Caller turns at a pause, labelled: has the caller finished, or will they go on?

Each line is said by both test voices, on a clear line and in street noise at 10 dB SNR,
over the phone's 8 kHz mu-law. A *complete* turn is a whole request followed by silence;
an *incomplete* one is the words before a mid-turn pause (the rest follows after the
pause: ``PAUSES_MS``, cycled, the spread of pauses inside a spoken turn). About a
quarter of the incomplete ones stop where a sentence could end ("I'd like to book a
table." ... "for two, at eight"), the hard case for any rule over words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tests.support.degraded import degrade, over_the_phone, spoken_line
from tests.support.voices import VOICES

COMPLETE = [
    "I'd like to book a table for two people tonight.",
    "My name is Ada Lovelace.",
    "Do you have any tables free on Friday?",
    "We'll be there around eight o'clock.",
    "Is there parking near the restaurant?",
    "Can I bring my dog?",
    "The booking is under the name Smith.",
    "Make that three people, please.",
    "I need to move my reservation to Saturday.",
    "Do you have vegetarian options?",
    "What time does the kitchen close?",
    "Thanks, that's all.",
]
# The words before the pause; the caller goes on after it.
INCOMPLETE = [
    "I'd like to book a table for",
    "My name is",
    "Could you tell me if you have",
    "We'll be arriving around",
    "I was wondering whether",
    "Can I bring",
    "The booking is under the name",
    "Actually, um,",
    "I need to change my reservation to",
    "Do you have any",
    "I'd like to book a table.",  # ... for two, at eight.
    "My name is Ada.",  # ... Ada Lovelace, with a Y.
    "Is there parking?",  # ... or should we come by train?
    "So the thing is,",
]
CONDITIONS = ("clear", "noisy 10 dB")
PAUSES_MS = (250, 400, 600, 900, 1200)


@dataclass(frozen=True)
class Turn:
    text: str
    complete: bool
    voice: str
    condition: str
    pause_ms: float  # incomplete: how long the caller pauses before going on
    pcm16k: np.ndarray  # the turn up to the decision, as the gateway's STT receives it


def turns() -> Iterator[Turn]:
    rng = np.random.default_rng(11)
    index = 0
    for condition in CONDITIONS:
        for voice in VOICES:
            for complete, lines in ((True, COMPLETE), (False, INCOMPLETE)):
                for text in lines:
                    # The words and 0.3 s of line after them: what the gateway has when
                    # it decides, at the pause (or soon after).
                    pcm = over_the_phone(degrade(spoken_line(voice, text), condition, rng))
                    pause = 0.0 if complete else float(PAUSES_MS[index % len(PAUSES_MS)])
                    index += 0 if complete else 1
                    yield Turn(text, complete, voice, condition, pause, pcm)
