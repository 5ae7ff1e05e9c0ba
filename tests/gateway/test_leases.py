"""Two real ``earshot serve`` processes on one real PostgreSQL, as behind a load balancer.

Twilio's webhook may reach one and its media stream the other: the stream token one
signed is taken by the other, once across both. One process killed with -9 mid-call:
the other ends that call ("gateway lost") within its lease and keeps serving its own.
A third process without the shared stream secret refuses to start, saying why.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from events.catalogue import CallEnded, CallStarted
from events.database import create_engine
from events.leases import LOST
from gateway.simulate import SimulatedCaller, connected_message, start_message
from projections.replay import fold_all
from tests.support import postgres
from tests.support.gateway import (
    AUTH_TOKEN,
    DATA_KEY_ENV,
    REPO,
    free_port,
    http_get_status,
    serve_process,
    stored_in,
)

LEASE_S = 3.0
SECRET = "a-stream-secret-the-gateways-share"
BALANCER = "http://127.0.0.1:9"  # the public URL Twilio signs for; no one listens there


async def empty(url: str) -> None:
    engine = create_engine(url)
    await postgres.empty(engine)
    await engine.dispose()


@pytest.fixture
def two_gateways(
    postgres_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, subprocess.Popen[bytes], str]]:
    asyncio.run(empty(postgres_url))
    env = {
        "EARSHOT_DB_URL": postgres_url,
        "EARSHOT_PUBLIC_URL": BALANCER,
        "EARSHOT_STREAM_SECRET": SECRET,
        "EARSHOT_LEASE_S": str(LEASE_S),
        **DATA_KEY_ENV,
    }
    one, other = free_port(), free_port()
    with (
        serve_process(one, env, tmp_path / "one.log") as first,
        serve_process(other, env, tmp_path / "other.log") as second,
    ):
        yield first, f"http://127.0.0.1:{one}", second, f"http://127.0.0.1:{other}"


def caller(webhook_at: str, stream_at: str, hang_up_after_s: float) -> SimulatedCaller:
    return SimulatedCaller(
        webhook_at,
        public_url=BALANCER,
        stream_base_url=stream_at,
        auth_token=AUTH_TOKEN,
        script=[],
        hang_up_after_s=hang_up_after_s,
    )


async def start_again(base: str, first: SimulatedCaller) -> tuple[int | None, str]:
    """A second stream for a call that had one, with its token: how it is closed."""
    ws_url = base.replace("http", "ws", 1) + "/twilio/media"
    truth = first.truth
    async with websockets.connect(ws_url) as ws:
        await ws.send(connected_message())
        await ws.send(
            start_message(
                "1", truth.call_sid, truth.stream_sid, "AC" + "0" * 32, first.stream_parameters
            )
        )
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


async def test_a_webhook_on_one_gateway_and_its_stream_on_the_other(
    two_gateways: tuple[subprocess.Popen[bytes], str, subprocess.Popen[bytes], str],
    postgres_url: str,
) -> None:
    _, one, _, other = two_gateways
    across = caller(one, other, hang_up_after_s=5.0)
    truth = await across.run()
    events = await stored_in(postgres_url, truth.call_sid)
    greeting = fold_all(events).heard.agent_turns()[0]
    assert greeting.heard_text == "Hello, you are through to the harbour."
    started = events[0]
    assert isinstance(started, CallStarted) and started.gateway
    # Its token, once more, on either process: refused; the call's record is unchanged.
    assert await start_again(one, across) == (1008, "call already started")
    assert await start_again(other, across) == (1008, "stream token replayed")
    assert await stored_in(postgres_url, truth.call_sid) == events


async def test_a_gateway_killed_mid_call_has_its_call_ended_by_the_other(
    two_gateways: tuple[subprocess.Popen[bytes], str, subprocess.Popen[bytes], str],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    killed, one, survivor, other = two_gateways
    doomed, kept = caller(one, one, 30.0), caller(other, other, 12.0)
    calls = [asyncio.create_task(c.run()) for c in (doomed, kept)]
    await asyncio.sleep(5.0)  # both greeted
    os.kill(killed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    lost = await stored_in(postgres_url, doomed.truth.call_sid, wait_s=LEASE_S * 4)
    took_s = time.monotonic() - killed_at
    ended = lost[-1]
    assert isinstance(ended, CallEnded) and ended.reason == LOST, ended
    assert took_s < LEASE_S + LEASE_S / 3 + 2.0, took_s  # within its lease and a renewal
    print(f"lease takeover: the killed gateway's call ended {took_s:.1f} s after kill -9")
    heard = fold_all(lost).heard.agent_turns()[0]
    assert heard.heard_text == "Hello, you are through to the harbour."  # intact
    await asyncio.gather(*calls)
    own = await stored_in(postgres_url, kept.truth.call_sid)
    assert [e.reason for e in own if isinstance(e, CallEnded)] == ["caller hung up"]
    assert http_get_status(other + "/healthz")[0] == 200
    assert survivor.poll() is None
    # A third gateway on this store without the shared secret refuses to start.
    env = {**os.environ, "EARSHOT_DB_URL": postgres_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    third = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    refusal = third.stderr.strip().splitlines()[-1]  # after serve's migration log lines
    assert third.returncode == 2, third.stderr
    assert refusal.startswith("earshot serve: 1 other gateway(s) serve this store"), refusal
