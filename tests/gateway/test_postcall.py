"""The post-call webhook, live: every ended call's summary reaches the operator exactly once,
though the receiver failed the first two attempts and the gateway was restarted between
them (issue 12). Driven from the event log's outbox, so the restarted gateway (a new
process instance on the same store) finishes what the first one began."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from actors.core.tool_signature import HEADER, verify
from events.database import create_engine
from events.outbox import PostCallOutbox, backoff_s
from events.store import EventStore
from gateway.app import EarshotApp
from gateway.postcall import DELIVERY_HEADER
from gateway.simulate import SimulatedCaller
from tests.support.gateway import AUTH_TOKEN, TEST_DATA_KEY, running_gateway, stored_call

SECRET = b"test-postcall-secret"
GREETING = "Hello, you are through to the harbour."


class Receiver(ThreadingHTTPServer):
    """Fails each call's first attempt with 503, drops the second without an answer, and
    takes the third; records every attempt."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.attempts: Counter[str] = Counter()
        self.taken: list[tuple[str, float, dict[str, object]]] = []  # (call, when, summary)
        self.unsigned = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/calls"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        call_sid = self.headers.get(DELIVERY_HEADER, "")
        try:
            verify(SECRET, body, self.headers.get(HEADER), time.time())
        except Exception:
            with self.server.lock:
                self.server.unsigned += 1
            self.send_error(401)
            return
        with self.server.lock:
            self.server.attempts[call_sid] += 1
            attempt = self.server.attempts[call_sid]
        if attempt == 1:
            self.send_error(503, "down for maintenance")
            return
        if attempt == 2:
            self.connection.shutdown(socket.SHUT_RDWR)  # no answer at all
            return
        with self.server.lock:
            self.server.taken.append((call_sid, time.monotonic(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def gateway(db: Path, receiver: Receiver) -> AbstractContextManager[tuple[str, EarshotApp]]:
    return running_gateway(
        f"sqlite+aiosqlite:///{db}",
        converse=False,
        greeting=GREETING,
        postcall_url=receiver.url,
        postcall_retry_s=1.0,
        tools_secret=SECRET,
    )


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_each_call_is_delivered_once_through_failures_and_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = tmp_path / "calls.db"
    with gateway(db, receiver) as (base, app):
        callers = [
            SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=3.0)
            for _ in range(2)
        ]
        truths = await asyncio.gather(*(c.run() for c in callers))
        calls = [t.call_sid for t in truths]
        for call_sid in calls:
            await stored_call(app, call_sid)
        # The first gateway meets the receiver down (503), then stops before the retry.
        await wait_for(lambda: all(receiver.attempts[c] >= 1 for c in calls), 10.0)
    stopped = time.monotonic()
    assert not receiver.taken
    with gateway(db, receiver) as (base, app):
        await wait_for(lambda: {c for c, _, _ in receiver.taken} == set(calls), 20.0)
        await asyncio.sleep(2.5)  # long enough for a duplicate to show (retries are 1 s apart)
    taken = Counter(call_sid for call_sid, _, _ in receiver.taken)
    assert taken == Counter(calls), taken  # exactly once each
    assert all(receiver.attempts[c] == 3 for c in calls), receiver.attempts
    assert all(when > stopped for _, when, _ in receiver.taken)  # by the restarted gateway
    assert receiver.unsigned == 0
    summary = next(s for c, _, s in receiver.taken if c == calls[0])
    assert summary["outcome"] == "caller hung up" and summary["from"] == callers[0].from_number
    turns: Any = summary["turns"]
    assert turns[0]["heard_text"] == GREETING
    assert set(summary) >= {"duration_s", "tools", "metrics", "transferred_to", "started_unix"}


async def test_the_outbox_enters_each_call_once_and_one_gateway_claims_it(tmp_path: Path) -> None:
    """Two gateways on one store: a call is entered once however often the log is read, and
    claimed by one of them at a time (so it is never sent twice at once)."""
    from events.catalogue import CallEnded, CallStarted
    from events.database import upgrade_async
    from events.encryption import MasterKey

    url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        store = EventStore(engine, MasterKey(TEST_DATA_KEY))
        for sid in ("CA1", "CA2"):
            started = CallStarted(
                call_sid=sid, seq=1, at_ms=0.0, stream_sid="MZ", wall_time_unix=1.0
            )
            await store.append(
                sid, [started, CallEnded(call_sid=sid, seq=2, at_ms=5.0, reason="x")]
            )
        one, other = PostCallOutbox(store, "gw-1"), PostCallOutbox(store, "gw-2")
        assert await one.feed(now=100.0) == 2
        assert await other.feed(now=100.0) == 0  # read again: nothing new
        first = await one.claim_due(now=100.0)
        assert sorted(d.call_sid for d in first) == ["CA1", "CA2"]
        assert await other.claim_due(now=100.0) == []  # claimed by gw-1
        await one.failed(first[0], "503", now=100.0, base_s=2.0)
        assert await other.claim_due(now=101.0) == []  # not due before its backoff
        again = await other.claim_due(now=102.5)
        assert [d.call_sid for d in again] == [first[0].call_sid] and again[0].attempts == 1
        await other.delivered(first[0].call_sid, now=103.0)
        assert await one.pending() == 1  # the other is still gw-1's, claimed
    finally:
        await engine.dispose()
    assert [backoff_s(n, 2.0) for n in (1, 2, 3, 9)] == [2.0, 4.0, 8.0, 300.0]
