"""A deploy's SIGTERM, on a real ``earshot serve`` process: nobody is hung up on mid-sentence.

The gateway stops admitting (busy, recorded; ``/healthz`` 503 "draining"), lets the
call in progress go on for ``EARSHOT_DRAIN_S``, then the caller hears a goodbye in
full (its end mark echoed) and the call ends, recorded; the process exits 0. A second
SIGTERM stops it at once, still recording the call's end.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.core.call_policy import DRAIN_GOODBYE
from events.catalogue import CallEnded, CallRefused
from gateway.simulate import SimulatedCaller, sign_and_post_webhook
from projections.replay import fold_all
from tests.support.gateway import (
    AUTH_TOKEN,
    free_port,
    http_get_status,
    serve_process,
    stored_in,
    webhook_params,
)

REPO = Path(__file__).resolve().parents[2]
DRAIN_S = 3.0


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``earshot serve`` in its own process (greets and listens), ready; its URL and store."""
    port = free_port()
    db_url = f"sqlite+aiosqlite:///{tmp_path}/calls.db"
    env = {"EARSHOT_DB_URL": db_url, "EARSHOT_DRAIN_S": str(DRAIN_S)}
    with serve_process(port, env, tmp_path / "gateway.log") as process:
        yield process, f"http://127.0.0.1:{port}", db_url


async def test_sigterm_drains_then_says_goodbye_heard_in_full_and_exits_0(
    gateway_process: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    process, base, db_url = gateway_process
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=40.0)
    call = asyncio.create_task(caller.run())
    await asyncio.sleep(5.0)  # the greeting has been heard; the caller stays on the line
    asked_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    status, body = await asyncio.to_thread(http_get_status, base + "/healthz")
    assert (status, json.loads(body)["status"]) == (503, "draining")
    refused = "CA" + "5" * 32
    twiml = await asyncio.to_thread(
        sign_and_post_webhook, base, base, AUTH_TOKEN, webhook_params(refused)
    )
    assert ET.fromstring(twiml).find("./Reject").attrib == {"reason": "busy"}  # type: ignore[union-attr]
    truth = await asyncio.wait_for(call, timeout=40.0)
    ended_after = time.monotonic() - asked_at
    assert await asyncio.to_thread(process.wait, 30) == 0
    assert truth.close_code == 1000  # the gateway hung up, cleanly
    assert DRAIN_S <= ended_after < DRAIN_S + 12.0, ended_after
    events = await stored_in(db_url, truth.call_sid)
    assert [e.reason for e in events if isinstance(e, CallEnded)] == ["gateway draining"]
    goodbye = fold_all(events).heard.agent_turns()[-1]
    assert (goodbye.reason, goodbye.heard_text) == ("goodbye", DRAIN_GOODBYE)  # in full
    assert goodbye.proven_end_ms >= goodbye.out_end_ms  # its end mark came back
    refusal = await stored_in(db_url, refused, until=CallRefused)
    assert [(type(e), getattr(e, "reason", "")) for e in refusal] == [(CallRefused, "draining")]


async def test_a_second_sigterm_stops_at_once_and_still_records_the_end(
    gateway_process: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    process, base, db_url = gateway_process
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=40.0)
    call = asyncio.create_task(caller.run())
    await asyncio.sleep(3.0)
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    asked_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0
    assert time.monotonic() - asked_at < DRAIN_S  # it did not wait for the drain
    truth = await asyncio.wait_for(call, timeout=20.0)
    events = await stored_in(db_url, truth.call_sid)
    assert len([e for e in events if isinstance(e, CallEnded)]) == 1
