"""Admission control's decisions: places are held from the webhook, released at the end."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.catalogue import CallEnded, CallRefused, CallStarted
from gateway.admission import Admission, CallerRateLimit
from gateway.app import EarshotApp
from gateway.simulate import CallRejected, SimulatedCaller, parse_twiml, sign_and_post_webhook
from projections.replay import fold_all
from tests.support.gateway import (
    AUTH_TOKEN,
    http_get,
    running_gateway,
    stored_call,
    webhook_params,
)


def test_calls_over_capacity_are_refused_until_a_place_frees() -> None:
    admission = Admission(capacity=2)
    assert admission.admit("CA1", 0.0) and admission.admit("CA2", 0.0)
    assert not admission.admit("CA3", 0.0)
    admission.stream_started("CA1")
    admission.call_ended("CA1")
    assert admission.admit("CA3", 1.0)


def test_a_burst_of_webhooks_cannot_overfill_before_the_streams_start() -> None:
    admission = Admission(capacity=2)
    admitted = [admission.admit(f"CA{n}", 0.0) for n in range(5)]
    assert admitted == [True, True, False, False, False]


def test_a_webhook_retry_keeps_its_place_and_a_lapsed_one_frees_it() -> None:
    admission = Admission(capacity=1, pending_for_s=30.0)
    assert admission.admit("CA1", 0.0)
    assert admission.admit("CA1", 1.0)  # Twilio retried the same call's webhook
    assert not admission.admit("CA2", 29.0)
    assert admission.admit("CA2", 31.0)  # CA1 never opened its stream


def test_a_stream_answered_by_another_process_still_counts() -> None:
    admission = Admission(capacity=1)
    admission.stream_started("CA9")
    assert admission.in_use(0.0) == 1 and not admission.admit("CA1", 0.0)


def test_one_number_may_call_so_often_and_a_retried_webhook_counts_once() -> None:
    limit = CallerRateLimit(calls=2, window_s=60.0)
    assert limit.allow("+1555", "CA1", 0.0) and limit.allow("+1555", "CA2", 10.0)
    assert limit.allow("+1555", "CA2", 11.0)  # Twilio retried CA2's webhook
    assert not limit.allow("+1555", "CA3", 20.0)
    assert limit.allow("+1666", "CA4", 20.0)  # another number is not affected
    assert limit.allow("+1555", "CA5", 60.5)  # CA1 has left the window


# --- a live gateway at capacity -----------------------------------------------------------


@pytest.fixture
def two_line_gateway(tmp_path: Path) -> Iterator[tuple[str, EarshotApp]]:
    with running_gateway(
        f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}",
        converse=False,
        max_calls=2,
        greeting="Hello, you are through to the harbour.",
    ) as running:
        yield running


async def test_a_third_caller_gets_a_busy_tone_and_the_two_admitted_calls_are_unaffected(
    two_line_gateway: tuple[str, EarshotApp],
) -> None:
    base, app = two_line_gateway
    callers = [
        SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=7.0)
        for _ in range(2)
    ]
    calls = [asyncio.create_task(c.run()) for c in callers]
    await asyncio.sleep(2.0)
    assert json.loads(http_get(base + "/healthz"))["capacity"] == 2
    third = "CA" + "3" * 32
    twiml = await asyncio.to_thread(
        sign_and_post_webhook, base, base, AUTH_TOKEN, webhook_params(third)
    )
    assert ET.fromstring(twiml).find("./Reject").attrib == {"reason": "busy"}  # type: ignore[union-attr]
    with pytest.raises(CallRejected, match="busy"):
        parse_twiml(twiml)
    truths = await asyncio.gather(*calls)
    refused = await stored_call(app, third, until=CallRefused)
    assert [type(e).__name__ for e in refused] == ["CallRefused"]
    assert isinstance(refused[0], CallRefused)
    assert (refused[0].reason, refused[0].in_use, refused[0].capacity) == ("busy", 2, 2)
    metrics = http_get(base + "/metrics", "metrics-secret")
    assert 'earshot_calls_refused_total{reason="busy"} 1' in metrics
    for truth in truths:
        events = await stored_call(app, truth.call_sid)
        started = events[0]
        assert isinstance(started, CallStarted)  # the numbers came through the stream's start
        caller = next(c for c in callers if c.truth.call_sid == truth.call_sid)
        assert (started.from_number, started.to_number) == (caller.from_number, "+15005550001")
        greeting = fold_all(events).heard.agent_turns()[0]
        assert greeting.heard_text == app.settings.agent.greeting  # heard in full
        assert next(e for e in events if isinstance(e, CallEnded)).reason == "caller hung up"
    # The two calls ended, so their places are free again.
    again = await asyncio.to_thread(
        sign_and_post_webhook, base, base, AUTH_TOKEN, webhook_params("CA" + "4" * 32)
    )
    assert ET.fromstring(again).find("./Connect/Stream") is not None


async def test_a_number_calling_in_a_loop_hears_busy_and_others_still_get_through(
    tmp_path: Path,
) -> None:
    with running_gateway(
        f"sqlite+aiosqlite:///{tmp_path / 'rate.db'}",
        converse=False,
        max_calls=10,
        calls_per_number=2,
    ) as (base, app):
        answers = []
        for n in range(3):
            params = webhook_params(f"CA{n:032d}")
            answers.append(
                await asyncio.to_thread(sign_and_post_webhook, base, base, AUTH_TOKEN, params)
            )
        other = {**webhook_params("CA" + "9" * 32), "From": "+15005550009"}
        answers.append(
            await asyncio.to_thread(sign_and_post_webhook, base, base, AUTH_TOKEN, other)
        )
        connected = [ET.fromstring(a).find("./Connect/Stream") is not None for a in answers]
        assert connected == [True, True, False, True]
        refused = await stored_call(app, f"CA{2:032d}", until=CallRefused)
        assert [getattr(e, "reason", "") for e in refused] == ["rate limited"]
        metrics = http_get(base + "/metrics", "metrics-secret")
        assert 'earshot_calls_refused_total{reason="rate limited"} 1' in metrics
