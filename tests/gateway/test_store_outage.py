"""The event store goes away mid-call: a real PostgreSQL server stopped, then started again.

Audio never waits on the disk, so the caller hears the greeting in full while the
server is down; the writer keeps every event queued and retries, so when the
server returns all of them land, in order, with no gap, and the replayed call is
the call as it happened. While the outage outlasts its bound, a new caller hears
busy (recorded once the store is back) and ``/healthz`` answers 503 with why.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import msgspec
import pytest

from events.catalogue import CallEnded, CallRefused, CallStarted
from gateway.simulate import SimulatedCaller, sign_and_post_webhook
from projections.replay import fold_all
from tests.support import postgres
from tests.support.gateway import (
    AUTH_TOKEN,
    http_get_status,
    running_gateway,
    seen,
    stored_call,
    webhook_params,
)

OUTAGE_S = 10.0  # as long as the issue asks: the call keeps talking throughout
BOUND_S = 1.5  # store_outage_bound_s here: new calls are refused after this much outage


@pytest.fixture
def own_server() -> Iterator[postgres.PostgresServer]:
    postgres.require(own_server=True)
    with postgres.own_postgres_server() as server:
        yield server


async def test_a_database_outage_mid_call_loses_nothing_and_the_caller_hears_it_all(
    own_server: postgres.PostgresServer,
) -> None:
    with running_gateway(own_server.url, converse=False, store_outage_bound_s=BOUND_S) as (
        base,
        app,
    ):
        writer = app.services.writer
        assert writer is not None
        caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=16.0)
        call = asyncio.create_task(caller.run())
        while not caller.truth.call_sid:
            await asyncio.sleep(0.02)
        await stored_call(app, caller.truth.call_sid, until=CallStarted)
        await asyncio.to_thread(own_server.stop)  # the greeting is still playing
        down_at = time.monotonic()
        while writer.outage_s() <= BOUND_S:  # bounded: a writer blind to outages fails here
            assert time.monotonic() - down_at < OUTAGE_S, "the writer never saw the outage"
            await asyncio.sleep(0.05)
        status, body = await asyncio.to_thread(http_get_status, base + "/healthz")
        assert status == 503 and json.loads(body)["status"] == "store unavailable"
        refused = "CA" + "7" * 32
        twiml = await asyncio.to_thread(
            sign_and_post_webhook, base, base, AUTH_TOKEN, webhook_params(refused)
        )
        assert ET.fromstring(twiml).find("./Reject").attrib == {"reason": "busy"}  # type: ignore[union-attr]
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        await asyncio.to_thread(own_server.start)
        truth = await call
        events = await stored_call(app, truth.call_sid, wait_s=30.0)
        live = seen(app).live_views[truth.call_sid].state
        retries = writer.commit_retries
        status, _ = await asyncio.to_thread(http_get_status, base + "/healthz")
        assert status == 200 and writer.outage_s() == 0.0
        refusal = await stored_call(app, refused, until=CallRefused, wait_s=10.0)
    assert retries > 0
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # nothing lost
    assert [e.reason for e in events if isinstance(e, CallEnded)] == ["caller hung up"]
    replayed = fold_all(events).heard
    assert msgspec.json.encode(replayed) == msgspec.json.encode(live)  # the call as it was
    greeting = replayed.agent_turns()[0]
    assert greeting.heard_text == app.settings.agent.greeting  # heard in full, during the outage
    assert truth.played, "the caller heard nothing"
    assert [(type(e).__name__, getattr(e, "reason", "")) for e in refusal] == [
        ("CallRefused", "store unavailable")
    ]
