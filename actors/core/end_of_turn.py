"""Has the caller finished, or only paused? A rule over the words said before the pause.

A fixed silence both cuts off callers who pause mid-thought ("I'd like to book a table
for ... two") and, made long enough not to, keeps every finished caller waiting. The
words before the pause often say which: a turn that stops on "for", "and", "the", "um"
or a comma is not over. The STT already transcribes at the first pause (for preemptive
generation); this reads that transcript, so it costs nothing. When the words sound
unfinished the turn waits ``UNFINISHED_WAIT_MS`` of silence instead of the usual
``end_of_turn_ms``. Chosen over silence alone and over the smart-turn v3.2 audio model on
a labelled corpus of complete and incomplete turns, on the phone's 8 kHz audio
(``bench/end_of_turn.py``; the table and the choice are in the README).
"""

from __future__ import annotations

import re

UNFINISHED_WAIT_MS = 1300.0  # the silence that ends a turn whose words sound unfinished
# Words a finished request does not end on: articles, prepositions, conjunctions,
# possessives, auxiliaries and fillers.
_CONTINUING = (
    "a an the and or but so because if then than that which who whether "  # joining
    "to for of with at in on by from about around into like as "  # prepositions
    "my your our their his her its this these those some any "  # before a noun
    "is are was were be am i we i'm we're i'd we'd it's there's "  # before the rest
    "um uh er erm hmm well actually"  # thinking aloud
)
CONTINUING_WORDS = frozenset(_CONTINUING.split())
_TRAILING = re.compile(r"(,|\.\.\.|…|-|—)\s*$")
_WORDS = re.compile(r"[a-z']+")


def sounds_unfinished(text: str) -> bool:
    """Do the words before a pause stop where a request cannot end?"""
    stripped = text.strip()
    if not stripped:
        return False
    if _TRAILING.search(stripped):  # Whisper writes a trailing-off voice as "..." or ","
        return True
    words = _WORDS.findall(stripped.lower())
    return bool(words) and words[-1] in CONTINUING_WORDS
