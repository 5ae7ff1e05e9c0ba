"""What a caller's words ask of the call itself (not of the conversation), sans I/O.

Two requests a receptionist must never miss are read from the final transcript
before the model sees it: a goodbye ("thanks, bye") ends the call once the agent's
own goodbye is heard, and a request for a person ("can I speak to someone?") is
put through. Both are short, fixed phrasings a caller uses; matching them here
makes them work the same with every model, and the model is left the rest.
"""

from __future__ import annotations

import re

GOODBYES = frozenset({"bye", "goodbye", "byebye", "bye-bye", "cheerio"})
MAX_GOODBYE_WORDS = 8  # "okay thank you very much bye" ends the call; a story ending in bye not
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")
_PERSON = re.compile(
    r"\b(?:speak|talk)\s+(?:to|with)\s+(?:a|an|the|some|someone|somebody|your)?\s*"
    r"(?:real\s+|actual\s+)?(?:person|human|someone|somebody|manager|staff|operator|"
    r"receptionist|front desk|people)\b"
    r"|\b(?:transfer|connect|put)\s+me\b"
    r"|\b(?:an?\s+)?(?:operator|human|real person)\s*(?:please)?\s*$"
)


def says_goodbye(text: str) -> bool:
    """The caller's turn is a farewell: short, and a goodbye word in it."""
    words = _WORD.findall(text.lower())
    return 0 < len(words) <= MAX_GOODBYE_WORDS and any(w in GOODBYES for w in words)


def asks_for_a_person(text: str) -> bool:
    """The caller asks to be put through to a person."""
    return _PERSON.search(" ".join(_WORD.findall(text.lower()))) is not None
