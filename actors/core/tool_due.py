"""Whether the caller has asked for a tool and said everything it needs, sans I/O.

The embedded 0.5B model answers a complete booking request ("a table for two tonight
at eight, the name is Ada") by saying it back ("Sure, I can help you book a table for
two...") in a third to a half of its replies, and books nothing: the caller hangs up
believing a table is waiting. Telling it so in the prompt did not fix that (8 to 16
calls in 20), nor did an example exchange (it repeated the example's words).
A person at the desk would have written the booking down. So the agent file may say,
for a tool, which words ask for it (``asked_by``) and how each required value sounds
(``heard_as``); once the caller's words since the tool was last called hold all of
them, ``due_tool`` names the tool and the reply's request carries it as the chat API's
``tool_choice``: the model must call it (the server's grammar keeps the call to the
tool's schema) and fills in the arguments itself. Whether a value was *said* is all
that is read here; what it is, the model says.

Each reader answers "did the caller say one?", erring towards no: a missed value lets
the model answer as before (it asks for what is missing), a wrong one would book a
table on a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from actors.core.agent import HEARD_AS, Agent, Tool
from projections.heard import CallerTurn, Heard, ToolTurn

_CLOCK_WORDS = (
    *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve"),
)
_TEENS = ("thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_NUMBER = rf"(?:\d{{1,2}}|{'|'.join(_CLOCK_WORDS + _TEENS)}|twenty)"
_HOUR = rf"(?:\d{{1,2}}(?::\d\d)?|{'|'.join(_CLOCK_WORDS)})"
# Words that follow "name is" or "under" without being a name.
_NOT_A_NAME = frozenset(_CLOCK_WORDS) | {
    *("a", "an", "the", "my", "our", "his", "her", "their", "this", "that", "it"),
    *("table", "booking", "reservation", "name", "what", "which", "who", "please"),
    *("sorry", "um", "uh", "er"),
}

_COUNT = re.compile(
    rf"\b(?:for|of)\s+{_NUMBER}\b(?!\s*(?::|o'?clock|am|pm|a\.m|p\.m))"
    rf"|\b{_NUMBER}\s+(?:people|persons|guests|adults|of us)\b"
    rf"|\bparty of\s+{_NUMBER}\b|\bjust me\b|\bjust myself\b"
)
_TIME = re.compile(
    rf"\b(?:at|around|by)\s+(?:half past\s+|quarter (?:past|to)\s+)?{_HOUR}\b"
    rf"|\b{_HOUR}\s*(?:am|pm|a\.m\.|p\.m\.|o'?clock)"
    r"|\b\d{1,2}:\d\d\b|\b(?:noon|midday|midnight)\b"
    rf"|\b(?:half past|quarter (?:past|to))\s+{_HOUR}\b"
)
_NAME_LEAD = re.compile(
    r"\b(?:name is|name's|under(?: the name)?(?: of)?|in the name of)\s+([a-z][a-z'-]*)"
)


def said_count(text: str) -> bool:
    """How many people: "for two", "four people", "a party of six", "just me"."""
    return _COUNT.search(text.lower()) is not None


def said_time(text: str) -> bool:
    """A time of day: "at eight", "7 pm", "8:00", "half past six", "noon"."""
    return _TIME.search(text.lower()) is not None


def said_name(text: str) -> bool:
    """A name for the booking: "the name is Ada", "under Chen", "my name is Bob"."""
    return any(m.group(1) not in _NOT_A_NAME for m in _NAME_LEAD.finditer(text.lower()))


_SAID = {"count": said_count, "time": said_time, "name": said_name}
assert tuple(_SAID) == HEARD_AS


def _asks_for(tool: Tool, text: str) -> bool:
    """The caller's words hold one of the tool's ``asked_by`` phrases."""
    lowered = " ".join(re.findall(r"[a-z0-9':]+", text.lower()))
    return any(re.search(rf"\b{re.escape(phrase)}\b", lowered) for phrase in tool.asked_by)


def _has_everything(tool: Tool, text: str) -> bool:
    return all(
        _SAID[parameter.heard_as](text)
        for parameter in tool.parameters.values()
        if parameter.required and parameter.heard_as is not None
    )


def _new_in(tool: Tool, newest: str) -> bool:
    """The newest turn adds to the request: it asks for the tool or says one of its values
    (so "thanks" after a failed call does not call it again)."""
    return _asks_for(tool, newest) or any(
        _SAID[p.heard_as](newest) for p in tool.parameters.values() if p.heard_as is not None
    )


def _forceable(tool: Tool) -> bool:
    """The agent file says when the tool is asked for and how every required value sounds."""
    required = [p for p in tool.parameters.values() if p.required]
    return bool(tool.asked_by) and all(p.heard_as is not None for p in required)


def due_tool(agent: Agent, heard: Heard) -> str | None:
    """The tool the reply to the call's last caller turn must call, if any."""
    for tool in agent.tools:
        if not _forceable(tool):
            continue
        turns = _caller_words_since(heard, tool.name)
        if not turns:
            continue
        text = " ".join(turns)
        if _asks_for(tool, text) and _has_everything(tool, text) and _new_in(tool, turns[-1]):
            return tool.name
    return None


def _caller_words_since(heard: Heard, tool_name: str) -> Sequence[str]:
    """The caller's turns since the tool was last called, oldest first."""
    words: list[str] = []
    for turn in reversed(heard.turns):
        if isinstance(turn, ToolTurn) and turn.name == tool_name:
            break
        if isinstance(turn, CallerTurn):
            words.append(turn.text)
    return words[::-1]
