"""Simulated caller <-> gateway over real sockets: greeting, cut-in, clear, heard to the ms.

The simulated caller plays the agent's audio as Twilio would and records where
its play head was when each clear took effect; the Heard projection, folded from
the stored events, must agree within 20 ms, with and without network delay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import AudioSent, ClearSent, MarkPlayed, ReplyTruncated
from gateway.app import EarshotApp
from gateway.simulate import (
    Network,
    SimulatedCaller,
    Truth,
    Utterance,
    stop_latencies_ms,
    write_heard_wav,
)
from projections.replay import fold_all
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call

STOP_LIMIT_MS = 300.0  # generous: 64 ms of speech to pause, a VAD chunk, the clear's leg


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("gw") / "calls.db"
    with running_gateway(f"sqlite+aiosqlite:///{db}", converse=False) as running:
        yield running


@pytest.fixture(scope="module")
def interruption() -> bytes:
    phrase = HibariEngine().synthesize("Sorry, can I stop you there?")
    return phrase_to_mulaw(phrase.samples, phrase.rate)


async def call(base: str, script: list[Utterance], network: Network, seconds: float) -> Truth:
    caller = SimulatedCaller(
        base, auth_token=AUTH_TOKEN, script=script, network=network, hang_up_after_s=seconds
    )
    return await caller.run()


async def test_greeting_played_to_the_end_is_heard_in_full(gateway: tuple[str, EarshotApp]) -> None:
    base, app = gateway
    truth = await call(base, [], Network(), seconds=6.0)
    events = await stored_call(app, truth.call_sid)
    agent = fold_all(events).heard.agent_turns()[0]
    assert not agent.interrupted and agent.reason == "greeting"
    assert agent.heard_text == app.settings.agent.greeting
    assert agent.heard_ms == pytest.approx(agent.sent_ms)
    assert not truth.clears
    assert sum(isinstance(e, MarkPlayed) for e in events) >= len(
        app.settings.agent.greeting.split()
    )


@pytest.mark.parametrize("one_way_ms, jitter_ms", [(0.0, 0.0), (60.0, 15.0)])
@pytest.mark.parametrize("cut_in_ms", [700.0, 1650.0, 2600.0])
async def test_cut_in_heard_ms_matches_what_the_caller_played(
    gateway: tuple[str, EarshotApp],
    interruption: bytes,
    tmp_path: Path,
    cut_in_ms: float,
    one_way_ms: float,
    jitter_ms: float,
) -> None:
    base, app = gateway
    network = Network(one_way_ms, jitter_ms, seed=int(cut_in_ms))
    script = [Utterance(interruption, cut_in_after_agent_ms=cut_in_ms)]
    truth = await call(base, script, network, seconds=cut_in_ms / 1000 + 2.5)
    events = await stored_call(app, truth.call_sid)
    agent = fold_all(events).heard.agent_turns()[0]

    assert len(truth.clears) == 1, "the cut-in must clear playback exactly once"
    # Stop latency as the caller lives it: their voice starts -> the agent's audio stops at
    # their ear (the README's P95 is 88 / 223 ms; bench/heard.py holds the figures).
    # (A clear up to 0.3 s before the loudness onset still cuts into this utterance: the
    # VAD hears a soft first sound sooner; anything earlier is a clear nobody asked for.)
    ((onset, stop_ms),) = stop_latencies_ms(truth)
    assert onset == truth.speech[0][0] and stop_ms <= STOP_LIMIT_MS + 2 * one_way_ms, stop_ms
    assert agent.interrupted and agent.out_start_ms is not None
    true_heard = truth.clears[0].head_ms - agent.out_start_ms
    # The caller's Twilio plays whole 20 ms packets: the clock names the packet that
    # played last, or the point between two when it cannot tell (bench/heard.py: P95 10 ms).
    # Under 60 +/- 15 ms of jitter the point it names can be a packet and a half from the
    # truth: 30 ms, issue 13's bound for the worst cut (a cut 0.7 s into the greeting was,
    # on CI and here, 2026-11-27).
    limit_ms = 30.0 if jitter_ms else 20.0
    assert abs(agent.heard_ms - true_heard) <= limit_ms, (agent.heard_ms, true_heard)
    truncated = next(e for e in events if isinstance(e, ReplyTruncated))
    # The bounds hold the truth: the lower one above all (no unheard word rests on it).
    assert truncated.heard_lower_ms <= true_heard + 1.0, (truncated.heard_lower_ms, true_heard)
    assert true_heard <= truncated.heard_upper_ms + 1.0, (truncated.heard_upper_ms, true_heard)
    # Nothing of the interrupted reply is sent after the clear.
    clear_seq = next(e.seq for e in events if isinstance(e, ClearSent))
    assert not [e for e in events if isinstance(e, AudioSent) and e.seq > clear_seq]
    # The heard words: never one the caller did not hear in full, at most one short of it.
    # (the truth computed here, not by the function under test: a word is heard when its
    # audio ended before the caller's play head stopped)
    head = truth.clears[0].head_ms
    truly_heard = [w.text for w in agent.words if w.out_end_ms <= head]
    said = agent.heard_text.split()
    assert said == truly_heard[: len(said)], (said, truly_heard)
    assert len(truly_heard) - len(said) <= 1, (said, truly_heard)
    write_heard_wav(truth, tmp_path / "heard.wav")
    assert (tmp_path / "heard.wav").stat().st_size > 8000
