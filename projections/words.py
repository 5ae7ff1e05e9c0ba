"""Turning a played duration into the words the caller heard.

Shared by the playback clock (when it records a truncation) and by the Heard
projection (when it folds one), so both always agree on what "heard" means: a
word is heard when its audio *ended* within the part that certainly played; the
word playing at the cut is the partial word, reported separately and never
counted as heard.

"Certainly" matters at a cut: the play position is an estimate with bounds, and
a word that ended between the lower bound and the estimate may not have been
heard. It is reported as the partial word instead, so the LLM's context never
holds a word the caller did not hear; the cost is at most one word the caller
did hear, counted as partial.
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


def heard_words(
    words: Sequence[PlacedWord], played_to_ms: float, certain_to_ms: float | None = None
) -> HeardWords:
    """The words whose audio ended by ``certain_to_ms`` (default: ``played_to_ms``), and
    the next one if it had started by ``played_to_ms`` (the partial word).

    Assumes ``words`` are in playout order (non-decreasing ends), as the TTS places them.
    """
    certain = played_to_ms if certain_to_ms is None else min(certain_to_ms, played_to_ms)
    heard: list[str] = []
    partial = ""
    for word in words:
        if word.out_end_ms <= certain:
            heard.append(word.text)
            continue
        if word.out_start_ms < played_to_ms:
            partial = word.text
        break
    return HeardWords(" ".join(heard), partial)
