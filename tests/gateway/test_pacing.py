"""Outbound pacing: a long reply never runs more than the configured lead ahead of playback,
and a clear stops the caller's playout within one network leg.

Both are measured at the simulated caller, whose clock shares a loaded 2-core machine with the
gateway and its models: each check allows ``SCHEDULING_MS`` for the two event loops' lateness,
which is still well under what a broken pacer or a clear held behind audio costs (the 200 ms
lead, or more). The tight figures (stop P95, pacer lateness P99) are bench/heard.py's and
bench/load.py's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import ClearSent
from gateway.app import EarshotApp
from gateway.simulate import Network, SimulatedCaller, Utterance
from tests.support.gateway import AUTH_TOKEN, running_gateway, seen, stored_call

SCHEDULING_MS = 60.0
LONG_REPLY = " ".join(
    ["Our opening hours are nine to five on weekdays, and ten to four on Saturdays."] * 6
)  # about 30 seconds of speech


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("pacing") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}", converse=False, greeting=LONG_REPLY
    ) as running:
        yield running


async def test_a_30_second_reply_never_exceeds_the_lead(gateway: tuple[str, EarshotApp]) -> None:
    base, app = gateway
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=60.0)
    caller.hang_up_after_s = 45.0
    truth = await caller.run()
    played_s = sum(to - fr for _, fr, to in truth.played) / 1000
    assert played_s >= 28.0, played_s
    lead = app.settings.playout_lead_ms
    # One 20 ms frame may go out as the lead dips below the limit.
    assert truth.max_socket_lead_ms <= lead + 20 + SCHEDULING_MS, truth.max_socket_lead_ms


async def test_clear_stops_playout_within_one_network_leg(
    gateway: tuple[str, EarshotApp],
) -> None:
    base, app = gateway
    phrase = HibariEngine().synthesize("Wait, stop.")
    network = Network(one_way_ms=60.0, jitter_ms=15.0, seed=3)
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        network=network,
        hang_up_after_s=6.0,
        script=[
            Utterance(phrase_to_mulaw(phrase.samples, phrase.rate), cut_in_after_agent_ms=3000)
        ],
    )
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    clear = next(e for e in events if isinstance(e, ClearSent))
    sent_at = seen(app).origins[truth.call_sid] + clear.at_ms / 1000
    stop_ms = (truth.clears[0].at - sent_at) * 1000
    one_leg = network.one_way_ms + network.jitter_ms
    assert 0 <= stop_ms <= one_leg + SCHEDULING_MS, stop_ms
    dropped = truth.clears[0].queued_ms  # what the caller had queued: the lead, and jitter's
    assert dropped <= app.settings.playout_lead_ms + 20 + network.jitter_ms + SCHEDULING_MS
