"""The LLM path: the same client talks to vLLM in production and to the embedded server here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.core.tool_calls import ToolCallReader, tool_schemas
from actors.engines.language_model import (
    ChatStream,
    EmbeddedServer,
    FirstPhrase,
    phrases,
    warm_up,
)
from gateway.agent_file import bundled_agent

CHAT = [
    {"role": "system", "content": "You are a phone receptionist. Answer briefly."},
    {"role": "user", "content": "Tell me a long story about the sea, with many details."},
]


def test_phrases_cut_at_sentence_ends_and_long_clauses() -> None:
    deltas = ["Sure", ", we are", " open until ten. Would", " you like", " a table? Ok"]
    assert list(phrases(iter(deltas))) == [
        "Sure, we are open until ten.",
        "Would you like a table?",
        "Ok",
    ]
    clause = "We have a lovely table by the window this evening, and another one later on"
    assert list(phrases(iter([clause]))) == [
        "We have a lovely table by the window this evening,",
        "and another one later on",
    ]
    first = "We open every day of the week, from noon, until ten, at night, with music, too."
    assert list(phrases(iter([first]))) == [
        "We open every day of the week,",  # the first phrase may end at a shorter clause
        "from noon, until ten, at night, with music,",  # later ones only past 40 characters
        "too.",
    ]
    assert list(phrases(iter(["Mr. Smith"]))) == ["Mr. Smith"]  # no sentence ends at "Mr."
    later = "Yes. Please ask for Dr. Jones at the desk. He is in."
    assert list(phrases(iter([later]))) == [
        "Yes.",
        "Please ask for Dr. Jones at the desk.",
        "He is in.",
    ]
    # A delta may end mid-token: "22:" then "00" is one word, not a clause boundary.
    streamed = ["We are open from twelve until 22:", "00 on Sunday", "."]
    assert list(phrases(iter(streamed))) == ["We are open from twelve until 22:00 on Sunday."]


def test_the_first_phrase_ends_at_any_sentence_end_or_a_clause_of_three_words() -> None:
    assert list(phrases(iter(["Absolutely! Ok. See you then."]))) == [
        "Absolutely!",  # however short: the caller's wait for the first sound ends sooner
        "Ok. See you then.",  # later phrases end past 12 characters
    ]
    assert list(phrases(iter(["Sure, I can help, with that."]))) == [
        "Sure, I can help,",
        "with that.",
    ]
    assert list(phrases(iter(["Yes, we have fish."]))) == ["Yes, we have fish."]  # 1 word
    assert list(phrases(iter([". Hello there."]))) == [". Hello there."]  # no empty phrase
    before = FirstPhrase(sentence_chars=12, clause_words=None, clause_chars=24)
    assert list(phrases(iter(["Absolutely! You can."]), first=before)) == ["Absolutely! You can."]


def test_a_first_phrase_may_end_before_a_joining_word_when_asked() -> None:
    """Off by default (``FirstPhrase``: it costs the voice); the cut waits for the word
    to be whole."""
    rule = FirstPhrase(break_words=4)
    text = "The Harbour closes on Sunday at ten."
    assert list(phrases(iter([text]), first=rule)) == ["The Harbour closes on Sunday", "at ten."]
    assert list(phrases(iter([text]))) == [text]
    streamed = iter(["The Harbour closes on Sunday at", "tention to detail."])
    assert list(phrases(streamed, first=rule)) == [
        "The Harbour closes on Sunday attention to detail."
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    embedded = EmbeddedServer()
    embedded.start()
    yield embedded
    embedded.stop()


def test_a_reply_streams_in_pieces(server: EmbeddedServer) -> None:
    stream = ChatStream(
        server.url, CHAT[:1] + [{"role": "user", "content": "What is your name?"}], max_tokens=30
    )
    pieces = list(stream)
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert stream.finish_reason in ("stop", "length")


def test_a_tool_the_model_must_call_is_called(server: EmbeddedServer) -> None:
    """``tool_choice`` on the embedded server: a question the model answers in words (asked
    without it, below) becomes a call of the named tool, read as the Llm reads it."""
    schemas = tool_schemas(bundled_agent())
    chat = [
        {"role": "system", "content": bundled_agent().system_prompt},
        {"role": "user", "content": "What time do you open?"},
    ]
    forced = ChatStream(server.url, chat, tools=schemas, tool_choice="book_table", temperature=0)
    reader = ToolCallReader(("book_table",))
    assert "".join(reader.text(delta) for delta in forced) + reader.flush() == ""
    call = reader.call(forced.tool_call_deltas)
    assert call is not None and call.name == "book_table" and "party_size" in call.arguments
    free = ChatStream(server.url, chat, tools=schemas, temperature=0)
    assert "".join(free).strip()[:1].isalpha() and not free.tool_call_deltas


def test_cancel_closes_the_stream_at_once_and_the_server_stays_healthy(
    server: EmbeddedServer,
) -> None:
    stream = ChatStream(server.url, CHAT, max_tokens=400)
    received: list[str] = []
    started = threading.Event()

    def consume() -> None:
        for piece in stream:
            received.append(piece)
            started.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert started.wait(30), "no tokens"
    cancelled_at = time.monotonic()
    stream.cancel()
    worker.join(5)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 1.0
    assert stream.finish_reason == "cancelled" and len(received) < 400
    # The server dropped the aborted request and serves the next one.
    again = ChatStream(
        server.url, CHAT[:1] + [{"role": "user", "content": "Say hello."}], max_tokens=10
    )
    assert "".join(again).strip()


def first_token_s(url: str, system_prompt: str) -> float:
    started = time.monotonic()
    chat = [{"role": "system", "content": system_prompt}, {"role": "user", "content": "Hi."}]
    next(iter(ChatStream(url, chat, max_tokens=5)))
    return time.monotonic() - started


def test_a_warmed_up_system_prompt_answers_sooner(server: EmbeddedServer) -> None:
    """Two long system prompts that share no prefix: the one warmed up beforehand gets its
    first token much sooner than the cold one (the server kept it)."""
    rules = " ".join(f"Rule {n}: answer politely and briefly." for n in range(40))
    cold = first_token_s(server.url, "You work at a bakery. " + rules)
    assert warm_up(server.url, "Bakery closed; you run a cafe. " + rules)
    warmed = first_token_s(server.url, "Bakery closed; you run a cafe. " + rules)
    print(f"first token: cold {cold * 1000:.0f} ms, after warm-up {warmed * 1000:.0f} ms")
    assert warmed < 0.7 * cold


def test_a_failed_warm_up_is_only_logged() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert warm_up(f"http://127.0.0.1:{port}/v1", "You are helpful.") is False


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent that is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_the_embedded_server_dies_with_a_gateway_killed_with_sigkill() -> None:
    """A stand-in gateway starts the embedded server and is killed with -9: no orphan is
    left holding 800 MB and a port."""
    script = (
        "from actors.engines.language_model import EmbeddedServer\n"
        "server = EmbeddedServer(threads=1)\n"
        "server.start()\n"
        "print(server.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    gateway = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert gateway.stdout is not None
    child = int(gateway.stdout.readline())
    try:
        assert running(child)
        gateway.kill()
        gateway.wait()
        deadline = time.monotonic() + 10.0
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child), "the LLM server outlived the gateway"
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


def test_a_server_that_dies_is_started_again_on_its_port(server: EmbeddedServer) -> None:
    """Killed for memory, say: the gateway's watch starts it again where the calls reach it."""
    assert not server.revive_if_dead()  # alive: nothing to do
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not server.exited:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    url = server.url
    assert server.revive_if_dead()
    assert server.url == url
    stream = ChatStream(server.url, CHAT, max_tokens=8)
    assert "".join(stream).strip()
