"""Reading the model's tool calls, and signing the requests to tools, without a server."""

from __future__ import annotations

import pytest

from actors.core.tool_calls import ToolCall, ToolCallReader, tool_schemas, with_tool_turn
from actors.core.tool_signature import SignatureRefused, sign, verify
from actors.engines.language_model import phrases
from gateway.agent_file import bundled_agent

NAMES = ("book_table", "end_call", "transfer_call")


def read(deltas: list[str]) -> tuple[list[str], ToolCall | None]:
    """What the caller would hear of a reply streamed as ``deltas``, and the call it made."""
    reader = ToolCallReader(NAMES)
    text = "".join(reader.text(delta) for delta in deltas) + reader.flush()
    heard = [phrase for phrase in phrases(iter([text])) if reader.speakable(phrase)]
    return heard, reader.call()


CALL = '{"name": "book_table", "arguments": {"party_size": 2, "time": "20:00", "name": "Ada"}}'
ARGUMENTS = {"party_size": 2, "time": "20:00", "name": "Ada"}


@pytest.mark.parametrize("pieces", [1, 3, 8])
def test_a_reply_that_is_a_call_is_never_heard(pieces: int) -> None:
    deltas = [CALL[i : i + pieces] for i in range(0, len(CALL), pieces)]
    assert read(deltas) == ([], ToolCall("call_1", "book_table", ARGUMENTS))


def test_a_call_in_hermes_tags_streamed_tag_first() -> None:
    tagged = f"<tool_call>\n{CALL}\n</tool_call>"
    assert read(["<to", "ol_c", tagged[9:]]) == ([], ToolCall("call_1", "book_table", ARGUMENTS))


def test_talk_of_functions_is_kept_from_the_caller_and_the_call_read_from_it() -> None:
    reply = (
        "Sure, I can help you with that. Call the `book_table` function with the arguments "
        '`{party_size: 2, time: "20:00", name: "Ada"}`.'
    )
    heard, call = read([reply[i : i + 5] for i in range(0, len(reply), 5)])
    assert heard == ["Sure, I can help you with that."]
    assert call == ToolCall("call_1", "book_table", ARGUMENTS)


def test_a_call_missing_its_last_brace_is_read_as_the_small_model_meant_it() -> None:
    """Qwen2.5 0.5B, asked for a table by the bundled receptionist, dropped the last brace."""
    tagged = f"<tool_call>\n{CALL[:-1]}\n</tool_call>"
    assert read([tagged]) == ([], ToolCall("call_1", "book_table", ARGUMENTS))


def test_a_described_call_with_nothing_to_call_is_a_failed_reply() -> None:
    with pytest.raises(ValueError, match="described a call"):
        read(["Sure. Please call book_table once you know how many people."])


@pytest.mark.parametrize(
    "garbage", ['{"name": "book_table", "argu', '{"arguments": {}}', '{"name": 3, "arguments": 1}']
)
def test_a_garbled_call_is_a_failed_reply(garbage: str) -> None:
    with pytest.raises(ValueError):
        read([garbage])


def test_plain_replies_pass_whole_and_bare_markup_is_a_failed_reply() -> None:
    assert read(["We open", " at noon. See you soon."]) == (
        ["We open at noon.", "See you soon."],
        None,
    )
    with pytest.raises(ValueError):  # held as a possible tag, then neither text nor a call
        read(["<t"])


def test_structured_tool_call_deltas_are_joined() -> None:
    reader = ToolCallReader(NAMES)
    deltas = [
        {"index": 0, "id": "call_9", "function": {"name": "book_", "arguments": '{"party_'}},
        {"index": 0, "function": {"name": "table", "arguments": 'size": 2}'}},
    ]
    assert reader.call(deltas) == ToolCall("call_9", "book_table", {"party_size": 2})


def test_a_name_sent_again_in_every_fragment_is_read_once() -> None:
    """llama-cpp-python's server streams a forced call (``tool_choice``) with the function's
    name in every fragment, as it sent it for the forced booking."""
    reader = ToolCallReader(NAMES)
    pieces = ['{"', "party", '_size": 2', "}"]
    deltas = [
        {"index": 0, "id": "call__0", "function": {"name": "book_table", "arguments": a}}
        for a in pieces
    ]
    assert reader.call(deltas) == ToolCall("call__0", "book_table", {"party_size": 2})


def test_the_bundled_agents_tools_as_the_chat_api_schema() -> None:
    schemas = {s["function"]["name"]: s["function"] for s in tool_schemas(bundled_agent())}
    assert set(schemas) == {"book_table", "end_call", "transfer_call"}
    book = schemas["book_table"]["parameters"]
    assert book["required"] == ["party_size", "time", "name"]
    assert book["properties"]["party_size"]["type"] == "integer"
    assert schemas["transfer_call"]["parameters"]["properties"]["target"]["enum"] == ["front_desk"]


def test_the_models_call_and_the_tools_answer_follow_the_chat() -> None:
    chat = [{"role": "user", "content": "Book me in"}]
    turn = with_tool_turn(chat, ToolCall("call_1", "book_table", {"party_size": 2}), {"ok": 1})
    assert turn[0] == chat[0] and [m["role"] for m in turn] == ["user", "assistant", "user"]
    assert turn[2]["content"] == '<tool_response>\n{"ok": 1}\n</tool_response>'


def test_a_signature_holds_only_for_its_body_secret_and_time() -> None:
    body = b'{"party_size":2}'
    header = sign(b"secret", body, 1_000_000)
    verify(b"secret", body, header, now=1_000_100)
    for secret, signed_body, now, why in [
        (b"other", body, 1_000_100, "does not match"),
        (b"secret", body + b" ", 1_000_100, "does not match"),
        (b"secret", body, 1_000_000 + 301, "too old"),
    ]:
        with pytest.raises(SignatureRefused, match=why):
            verify(secret, signed_body, header, now=now)
    for bad in (None, "", "t=abc,v1=00", "v1=00"):
        with pytest.raises(SignatureRefused):
            verify(b"secret", body, bad, now=1_000_000)
