"""Tools, live: the model calls a tool while answering a caller, and the caller hears what
came of it (issue 12). The LLM is the fault-injecting endpoint, told which call to make
(as text, the embedded server's way, or as ``delta.tool_calls``, vLLM's); the tools are
the bundled booking service (mounted by the gateway, writing to its SQLite file) and a
test receiver that checks every request's signature and can fail, dawdle or babble.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from actors.core.agent import Agent, Tool, ToolParameter
from actors.core.audio_formats import phrase_to_mulaw
from actors.core.liveness import HOLD_LINE
from actors.core.tool_signature import HEADER, sign, verify
from actors.engines.speech_synthesis import HibariEngine
from actors.tool_use import TOOL_APOLOGY
from events.catalogue import (
    AnyEvent,
    CallEnded,
    SilenceFilled,
    ToolCalled,
    ToolFailed,
    ToolResult,
)
from gateway.agent_file import bundled_agent
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Truth, Utterance
from projections import liveness
from projections.heard import AgentTurn
from projections.replay import fold_all, to_text
from tests.support.fault_llm import REPLY, FaultInjectingLlm, ToolCallReply, fault_injecting_llm
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call

SECRET = b"test-tools-secret"
CONFIRMED = "All set, your order is in."


class Receiver(ThreadingHTTPServer):
    """An operator's tool endpoint: checks the signature, then answers as ``mode`` says."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.mode = "ok"  # ok, slow, error, garbage, silent (no say), hang
        self.received: list[tuple[bool, dict[str, object], str]] = []  # (signed, body, call)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/order"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            verify(SECRET, body, self.headers.get(HEADER), time.time())
            signed = True
        except Exception:
            signed = False
        self.server.received.append((signed, json.loads(body), self.headers["X-Earshot-Call"]))
        mode = self.server.mode
        if mode in ("slow", "hang"):
            time.sleep(1.5 if mode == "slow" else 4.0)
        if mode == "error" or not signed:
            self.send_error(500 if signed else 401)
            return
        answer = {"ok": True, "say": CONFIRMED} if mode != "silent" else {"ok": True, "eta": 20}
        data = b"<html>oops</html>" if mode == "garbage" else json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tools_llm() -> Iterator[FaultInjectingLlm]:
    with fault_injecting_llm() as server:
        yield server


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tools") / "calls.db"


@pytest.fixture(scope="module")
def gateway(
    db_path: Path, tools_llm: FaultInjectingLlm, receiver: Receiver
) -> Iterator[tuple[str, EarshotApp]]:
    order = Tool(
        name="place_order",
        description="Order food for delivery.",
        url=receiver.url,
        parameters={"dish": ToolParameter(type="string", description="what to order")},
        timeout_s=3.0,
        holding="Let me put that through.",
    )
    bundled = bundled_agent()
    agent = Agent(
        name="test",
        system_prompt=bundled.system_prompt,
        greeting="Hello, how can I help?",
        transfer_targets=bundled.transfer_targets,
        tools=[*bundled.tools, order],
    )
    with running_gateway(
        f"sqlite+aiosqlite:///{db_path}",
        llm_url=tools_llm.url,
        agent=agent,
        tools_secret=SECRET,
        # One scripted answer per request: a reply begun at a pause (and dropped when the
        # caller goes on) would take one (tests/gateway/test_preemptive.py covers those).
        preemptive=False,
    ) as running:
        yield running


def spoken(text: str) -> bytes:
    phrase = HibariEngine().synthesize(text)
    return phrase_to_mulaw(phrase.samples, phrase.rate)


# The scripted model answers whatever is asked; a complete booking request also makes the
# booking due (``must_call``), so the other tools are asked for in other words.
BOOKING = "I'd like to book a table for two tonight at eight, the name is Ada."
ORDER = "I'd like to order some food for delivery, please."


async def ask(
    base: str,
    app: EarshotApp,
    llm: FaultInjectingLlm,
    *replies: str | ToolCallReply,
    question: str = ORDER,
) -> tuple[list[AnyEvent], Truth]:
    """One caller turn, the LLM answering with ``replies``."""
    llm.replies = list(replies)
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        script=[Utterance(spoken(question), after_agent_quiet_ms=500.0)],
        hang_up_after_s=16.0,
    )
    truth = await caller.run()
    return await stored_call(app, truth.call_sid), truth


def agent_says(events: list[AnyEvent]) -> list[str]:
    return [t.heard_text for t in fold_all(events).heard.agent_turns() if t.reason != "greeting"]


def answer(events: list[AnyEvent]) -> AgentTurn:
    return next(t for t in fold_all(events).heard.agent_turns() if t.reason == "caller_turn")


BOOK = ToolCallReply("book_table", {"party_size": 2, "time": "20:00", "name": "Ada"})


async def test_a_table_is_booked_in_the_database_and_the_confirmation_heard(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm, db_path: Path
) -> None:
    base, app = gateway
    events, truth = await ask(base, app, tools_llm, BOOK, question=BOOKING)
    # Every value said: the request told the model to book (llama.cpp and vLLM hold it to
    # that with a grammar; this scripted model just answers), and the caller heard the
    # tool's holding line at once, before the model had written the call.
    booking = {"type": "function", "function": {"name": "book_table"}}
    assert tools_llm.chats[-1]["tool_choice"] == booking
    called = next(e for e in events if isinstance(e, ToolCalled))
    assert (called.name, json.loads(called.arguments)) == ("book_table", BOOK.arguments)
    result = json.loads(next(e for e in events if isinstance(e, ToolResult)).result)
    assert result["booked"] is True
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT name, party_size, time_text FROM bookings WHERE call_sid = ?",
            (truth.call_sid,),
        ).fetchall()
    assert rows == [("Ada", 2, "20:00")]
    turn = answer(events)
    holding = app.settings.agent.tools[0].holding
    assert turn.heard_text == f"{holding} {result['say']}" and not turn.interrupted
    assert f"tool book_table({called.arguments}) -> " in to_text(fold_all(events), truth.call_sid)
    assert not any("name" in text for text in agent_says(events) if "{" in text)  # no JSON aloud
    # The offer reached the model: the chat API's tools, the booking tool among them.
    tools: Any = tools_llm.chats[-1]["tools"]
    offered = {tool["function"]["name"] for tool in tools}
    assert {"book_table", "place_order", "end_call", "transfer_call"} <= offered


async def test_a_call_in_tool_calls_deltas_works_the_same(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm, receiver: Receiver
) -> None:
    base, app = gateway
    receiver.mode = "ok"
    order = ToolCallReply("place_order", {"dish": "chowder"}, structured=True)
    events, truth = await ask(base, app, tools_llm, order)
    assert "tool_choice" not in tools_llm.chats[-1]  # nothing was due: the model chose
    assert answer(events).heard_text == CONFIRMED
    signed, body, call_sid = receiver.received[-1]
    assert signed and body == {"dish": "chowder"} and call_sid == truth.call_sid


async def test_a_slow_tool_gets_the_holding_line_first(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm, receiver: Receiver
) -> None:
    base, app = gateway
    receiver.mode = "slow"
    events, _ = await ask(base, app, tools_llm, ToolCallReply("place_order", {"dish": "crab"}))
    assert answer(events).heard_text == f"Let me put that through. {CONFIRMED}"
    assert next(e for e in events if isinstance(e, ToolResult)).ms >= 1400


async def test_an_answer_quiet_while_the_model_writes_the_call_gets_the_holding_line(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm
) -> None:
    # CI saw 6.7 s of quiet after "One moment while I book that." under load: the model
    # was writing the booking's arguments. Here it takes about 5.5 s to write them.
    base, app = gateway
    tools_llm.word_delay_s = 0.5
    try:
        events, _ = await ask(base, app, tools_llm, BOOK, question=BOOKING)
    finally:
        tools_llm.word_delay_s = 0.0
    turn = answer(events)
    holds = [e for e in events if isinstance(e, SilenceFilled)]
    assert [(e.action, e.waiting_for, e.reply_id) for e in holds] == [
        ("hold", "more", turn.reply_id)
    ]
    heard = [t.heard_text for t in fold_all(events).heard.agent_turns() if t.reason == "hold"]
    assert len(heard) == 1 and HOLD_LINE.startswith(heard[0]) and heard[0]  # (it may yield)
    gaps = liveness.fold_all(events).reply_gaps_ms  # quiet inside the answer
    assert gaps and max(gaps) < 2_200.0, gaps  # about 1.2 s, then 1.5 s; without it, 4 s
    say = json.loads(next(e for e in events if isinstance(e, ToolResult)).result)["say"]
    holding = app.settings.agent.tools[0].holding
    assert turn.heard_text.startswith(f"{holding} {say[:30]}")  # the caller hangs up in it


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("error", "place_order answered HTTP 500"),
        ("garbage", "place_order answered something that is not JSON"),
        ("hang", "place_order timed out after 3.0 s"),
    ],
)
async def test_a_failed_tool_is_apologised_for_and_the_call_goes_on(
    gateway: tuple[str, EarshotApp],
    tools_llm: FaultInjectingLlm,
    receiver: Receiver,
    mode: str,
    error: str,
) -> None:
    base, app = gateway
    receiver.mode = mode
    events, _ = await ask(base, app, tools_llm, ToolCallReply("place_order", {"dish": "eel"}))
    failed = next(e for e in events if isinstance(e, ToolFailed))
    assert failed.error == error
    heard = answer(events).heard_text
    assert heard.endswith(TOOL_APOLOGY), heard
    assert next(e.reason for e in events if isinstance(e, CallEnded)) == "caller hung up"


async def test_a_result_without_words_is_worded_by_the_model(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm, receiver: Receiver
) -> None:
    base, app = gateway
    receiver.mode = "silent"
    events, _ = await ask(base, app, tools_llm, ToolCallReply("place_order", {"dish": "cod"}))
    assert answer(events).heard_text == REPLY  # the second request's answer
    follow_up = tools_llm.chats[-1]
    assert "tools" not in follow_up  # no second round of tools: no loops
    last = follow_up["messages"][-1]  # type: ignore[index]
    assert last == {
        "role": "user",
        "content": '<tool_response>\n{"ok": true, "eta": 20}\n</tool_response>',
    }


async def test_the_models_transfer_call_puts_the_caller_through(
    gateway: tuple[str, EarshotApp], tools_llm: FaultInjectingLlm
) -> None:
    base, app = gateway
    events, truth = await ask(
        base, app, tools_llm, ToolCallReply("transfer_call", {"target": "front_desk"})
    )
    assert next(e.reason for e in events if isinstance(e, CallEnded)) == "transferred"
    assert truth.after_stream is not None and "+15005550006" in truth.after_stream


def test_the_booking_service_refuses_an_unsigned_or_forged_request(
    gateway: tuple[str, EarshotApp],
) -> None:
    base, _ = gateway
    body = json.dumps(BOOK.arguments).encode()
    for signature in (None, sign(b"not-the-secret", body, int(time.time()))):
        headers = {"Content-Type": "application/json", **({HEADER: signature} if signature else {})}
        request = Request(base + "/tools/book_table", data=body, headers=headers, method="POST")
        with pytest.raises(HTTPError) as refused:
            urlopen(request, timeout=5)
        assert refused.value.code == 401
    stale = sign(SECRET, body, int(time.time()) - 3600)
    request = Request(base + "/tools/book_table", data=body, headers={HEADER: stale}, method="POST")
    with pytest.raises(HTTPError) as refused:
        urlopen(request, timeout=5)
    assert refused.value.code == 401
