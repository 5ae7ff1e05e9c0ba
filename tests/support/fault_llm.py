"""An OpenAI-compatible chat endpoint that can be told to stall or dawdle: a fault injector.

It streams a fixed reply as server-sent events, exactly as the chat completions
API does, ``word_delay_s`` apart (a tool call as text: each 8-character piece),
unless ``stall_next`` is set: then it reads the request and sends nothing until
the client gives up and closes the connection.
``faults`` names what the next requests meet, one each: "cut" (three words, then
the connection closes mid-reply), "done_early" (three words, then ``[DONE]`` with
no finish_reason, as llama.cpp's server ends a request it interrupts), "empty" (a
finished reply with no text), "error" (HTTP 500), "stall" (as ``stall_next``),
"stall_mid" (three words, then nothing until the client closes).
``replies`` queues what the next requests answer, one each, before ``reply``: a text,
or a ``ToolCallReply`` (the model calling a tool: as the reply's text, the way the
embedded llama.cpp server returns it, or as ``delta.tool_calls``, the way vLLM with a
tool parser does). Either way it counts requests the client closed early, so a test can check that a
timed-out or cancelled request was really closed. It stands in for the LLM only in
tests of faults and of exact cut timing; the real model's path is tested against
the embedded server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = "Of course, we can do that for you."
LONG_REPLY = (
    "We open at noon every day. Lunch is served until three. Dinner starts at six. "
    "The kitchen closes at ten. We have fish, shellfish and a few meat dishes. "
    "Booking is a good idea on weekends."
)


@dataclass(frozen=True)
class ToolCallReply:
    name: str
    arguments: dict[str, object]
    structured: bool = False  # in delta.tool_calls (vLLM's parser), not as text


class FaultInjectingLlm(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stall_next = 0  # how many of the next requests stall
        self.faults: list[str] = []  # what each of the next requests meets (see above)
        self.reply = REPLY
        self.replies: list[str | ToolCallReply] = []  # the next requests' answers, in order
        self.word_delay_s = 0.0
        self.requests = 0
        self.stalled_requests_closed = 0
        self.streams_closed_early = 0
        self.chats: list[dict[str, object]] = []  # every request's body, in arrival order
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def take_fault(self) -> str:
        with self.lock:
            self.requests += 1
            if self.stall_next > 0:
                self.stall_next -= 1
                return "stall"
            return self.faults.pop(0) if self.faults else ""

    def take_reply(self) -> str | ToolCallReply:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.reply


class _Handler(BaseHTTPRequestHandler):
    server: FaultInjectingLlm

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.server.lock:
            self.server.chats.append(body)
        fault = self.server.take_fault()
        if fault == "stall":
            self._wait_for_the_client_to_close()
            return
        if fault == "error":
            self.send_error(500, "injected server error")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        reply = self.server.take_reply()
        if isinstance(reply, ToolCallReply):
            self._send_tool_call(reply)
            return
        words = [] if fault == "empty" else reply.split(" ")
        if fault in ("cut", "done_early", "stall_mid"):
            words = words[:3]
        try:
            self._send({"role": "assistant"}, None)
            for index, word in enumerate(words):
                self._send({"content": word if index == 0 else " " + word}, None)
                time.sleep(self.server.word_delay_s)
            if fault == "cut":
                self.connection.shutdown(socket.SHUT_RDWR)  # mid-reply, no finish, no [DONE]
                return
            if fault == "stall_mid":
                self._wait_for_the_client_to_close()
                return
            if fault != "done_early":
                self._send({}, "stop")
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:  # the client closed the stream: it cancelled
            with self.server.lock:
                self.server.streams_closed_early += 1
        self.close_connection = True

    def _send_tool_call(self, call: ToolCallReply) -> None:
        text = json.dumps({"name": call.name, "arguments": call.arguments})
        self._send({"role": "assistant"}, None)
        if call.structured:
            function = {"name": call.name, "arguments": json.dumps(call.arguments)}
            self._send({"tool_calls": [{"index": 0, "id": "call_7", "function": function}]}, None)
            self._send({}, "tool_calls")
        else:
            for start in range(0, len(text), 8):  # streamed in pieces, as tokens come
                self._send({"content": text[start : start + 8]}, None)
                time.sleep(self.server.word_delay_s)
            self._send({}, "stop")
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _wait_for_the_client_to_close(self) -> None:
        self.connection.settimeout(30.0)
        try:
            while self.connection.recv(1024):  # b"" once the client closed
                pass
        except OSError:
            pass
        with self.server.lock:
            self.server.stalled_requests_closed += 1

    def _send(self, delta: dict[str, object], finish: str | None) -> None:
        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fault_injecting_llm() -> Iterator[FaultInjectingLlm]:
    server = FaultInjectingLlm()
    thread = threading.Thread(target=server.serve_forever, name="fault-llm", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
