"""Turning a played duration into the words the caller heard.

Shared by the playback clock (when it records a truncation) and by the Heard
projection (when it folds one), so both always agree on what "heard" means: a
word is heard when its audio *ended* within the played part; the word playing
at the cut is the partial word, reported separately and never counted as heard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class PlacedWord(NamedTuple):
    """A word placed on the outbound stream (absolute ms)."""

    text: str
    out_start_ms: float
    out_end_ms: float


class HeardWords(NamedTuple):
    text: str
    partial_word: str


def heard_words(words: Sequence[PlacedWord], played_to_ms: float) -> HeardWords:
    """The words whose audio ended by ``played_to_ms``, and the one cut off there.

    Assumes ``words`` are in playout order (non-decreasing ends), as the TTS places them.
    """
    heard: list[str] = []
    partial = ""
    for word in words:
        if word.out_end_ms <= played_to_ms:
            heard.append(word.text)
            continue
        if word.out_start_ms < played_to_ms:
            partial = word.text
        break
    return HeardWords(" ".join(heard), partial)
