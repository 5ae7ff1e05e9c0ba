"""What of the LLM's output may be spoken: never anything internal.

The Context marks an interrupted agent turn with ``INTERRUPTED_MARKER``, and a
small model copies what it sees: it once said "the caller interrupted you here"
out loud. Nothing bracketed, no role label and no copy of a marker, bracketed or
not, may reach the TTS. ``speakable`` filters the stream of text deltas before
they are cut into phrases (a bracket can open in one delta and close three
later); ``clean_phrase`` is the last check on each phrase. A reply that is empty
once cleaned is an empty reply, which the Llm treats as a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from projections.context import INTERRUPTED_MARKER

# Brackets a phone agent never speaks: stage directions, markers, tags.
_OPENERS = {"[": "]", "<": ">", "{": "}"}
# "Assistant:", "Agent:", "User:" ... at the start of a reply or a line: a role label.
_ROLE_LABEL = re.compile(
    r"(^|(?<=[\n.!?]))\s*(assistant|agent|receptionist|user|caller|system|ai)\s*:\s*",
    re.IGNORECASE,
)
# The marker's words without their brackets (the model may drop or change them).
_MARKER_WORDS = re.compile(
    r"\(?\s*"
    + r"\W+".join(re.escape(w) for w in INTERRUPTED_MARKER.strip("[]").split())
    + r"\W*\)?",
    re.IGNORECASE,
)
_MAX_HIDDEN_CHARS = 200  # an opener never closed within this is a literal character


def speakable(deltas: Iterator[str]) -> Iterator[str]:
    """Text deltas with every bracketed span removed, streaming (held only while open)."""
    hidden = ""  # text since an unclosed opener
    closer = ""
    for delta in deltas:
        out = []
        for char in delta:
            if closer:
                hidden += char
                if char == closer:
                    hidden, closer = "", ""
                elif len(hidden) > _MAX_HIDDEN_CHARS:  # not a bracketed span after all
                    out.append(hidden.replace(hidden[0], "", 1))
                    hidden, closer = "", ""
            elif char in _OPENERS:
                closer, hidden = _OPENERS[char], char
            else:
                out.append(char)
        if out:
            yield "".join(out)


def clean_phrase(text: str) -> str:
    """A phrase with role labels and marker words removed, whitespace tidied."""
    text = _MARKER_WORDS.sub(" ", text)
    text = _ROLE_LABEL.sub(" ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = " ".join(text.split())
    return "" if not re.search(r"\w", text) else text
