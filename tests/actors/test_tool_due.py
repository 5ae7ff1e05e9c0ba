"""When the model must call a tool: the caller asked for it and said every value it needs
(``actors/core/tool_due.py``), read from the call's heard turns."""

from __future__ import annotations

import msgspec
import pytest

from actors.core.tool_due import due_tool, said_count, said_name, said_time
from gateway.agent_file import bundled_agent
from projections.heard import AgentTurn, CallerTurn, Heard, ToolTurn

AGENT = bundled_agent()


def heard(*turns: str | ToolTurn) -> Heard:
    """Caller turns (text), with the agent's answer between them, and tool calls."""
    built: list[CallerTurn | AgentTurn | ToolTurn] = []
    for n, turn in enumerate(turns):
        if isinstance(turn, ToolTurn):
            built.append(turn)
        else:
            built += [AgentTurn(reply_id=n, reason="caller_turn"), CallerTurn(turn=n, text=turn)]
    return Heard(turns=tuple(built))


BOOKED = ToolTurn(reply_id=9, call_id="c", name="book_table", arguments="{}", result="{}")


@pytest.mark.parametrize(
    ("text", "count", "time", "name"),
    [
        ("I'd like to book a table for two tonight at eight. The name is Ada.", 1, 1, 1),
        ("Can I book a table for four people tomorrow at 7 pm? My name is Bob.", 1, 1, 1),
        ("Hi, a table for three at half past six please, under Chen.", 1, 1, 1),
        ("A reservation for two at 8:00 tonight, name is Smith.", 1, 1, 1),
        ("A party of 6 at noon, in the name of O'Brien.", 1, 1, 1),
        ("Just me, 7 p.m., under the name Lee.", 1, 1, 1),
        ("I'd like to book a table for tonight.", 0, 0, 0),
        ("Do you have a table for two tomorrow?", 1, 0, 0),
        ("Book me a table for eight o'clock.", 0, 1, 0),  # eight o'clock is a time
        ("The name is the same as last time.", 0, 0, 0),
        ("A reservation for two, please.", 1, 0, 0),  # "for two" is no name
        ("Thanks, bye.", 0, 0, 0),
    ],
)
def test_each_value_is_heard_only_when_said(text: str, count: int, time: int, name: int) -> None:
    assert (said_count(text), said_time(text), said_name(text)) == (count, time, name)


def test_a_complete_request_must_be_booked() -> None:
    complete = "I'd like to book a table for two tonight at eight, the name is Ada."
    assert due_tool(AGENT, heard(complete)) == "book_table"


def test_a_request_said_over_several_turns_is_booked_once_complete() -> None:
    first = "I'd like to book a table for tonight."
    assert due_tool(AGENT, heard(first)) is None
    assert due_tool(AGENT, heard(first, "For two at eight.")) is None
    assert due_tool(AGENT, heard(first, "For two at eight.", "Under Ada.")) == "book_table"


def test_words_without_a_request_call_nothing() -> None:
    """Every value said, but nothing asked of the tool: a question, not a booking."""
    assert due_tool(AGENT, heard("Is it busy at eight for two? My name is Ada.")) is None


def test_after_the_call_only_a_new_request_calls_again() -> None:
    complete = "Book a table for two at eight, the name is Ada."
    assert due_tool(AGENT, heard(complete, BOOKED, "Thanks, that's great.")) is None
    # Not the old words: a turn after the call starts afresh.
    assert due_tool(AGENT, heard(complete, BOOKED, "For four.")) is None
    again = "And another table for four at nine, under Bob."
    assert due_tool(AGENT, heard(complete, BOOKED, again)) == "book_table"


def test_a_tool_the_agent_file_does_not_describe_is_left_to_the_model() -> None:
    """Without ``asked_by``, or with a required value that has no ``heard_as``, never forced."""
    book = AGENT.tools[0]
    no_words = msgspec.structs.replace(book, asked_by=[])
    name = msgspec.structs.replace(book.parameters["name"], heard_as=None)
    unread = msgspec.structs.replace(book, parameters={**book.parameters, "name": name})
    complete = heard("Book a table for two at eight, the name is Ada.")
    for tool in (no_words, unread):
        assert due_tool(msgspec.structs.replace(AGENT, tools=[tool]), complete) is None
