"""How exactly does Earshot know what the caller heard? Simulated caller as ground truth.

    python -m bench.heard [--calls 10] [--delays 0,60] [--jitter 15]

For each network setting, ``--calls`` calls in which the simulated caller cuts
into the agent at a random point; compares the Heard projection (folded from
the stored events) with where the caller's play head really was when the clear
took effect. Prints error percentiles (ms), word-boundary agreement, and the
stop latency (clear sent -> caller's playout stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from pathlib import Path

from actors.audio_formats import phrase_to_mulaw
from actors.speech_synthesis import HibariEngine
from events.catalogue import ClearSent
from events.database import create_engine
from events.store import EventStore
from gateway.app import EarshotApp
from gateway.simulate import Network, SimulatedCaller, Utterance
from projections.metrics import percentile
from projections.replay import fold_all
from projections.words import heard_words
from tests.gateway.server import AUTH_TOKEN, running_gateway


async def one_call(
    base: str, app: EarshotApp, speech: bytes, cut_in_ms: float, network: Network
) -> dict[str, float]:
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        network=network,
        script=[Utterance(speech, cut_in_after_agent_ms=cut_in_ms)],
        hang_up_after_s=cut_in_ms / 1000 + 2.0,
    )
    truth = await caller.run()
    await asyncio.sleep(0.3)
    engine = create_engine(app.settings.db_url)
    events = await EventStore(engine).read_call(truth.call_sid)
    await engine.dispose()
    agent = fold_all(events).heard.agent_turns()[0]
    if not truth.clears or not agent.interrupted or agent.out_start_ms is None:
        raise RuntimeError(f"call {truth.call_sid}: no clear recorded")
    true_end = truth.clears[0].head_ms
    true_words = heard_words(agent.words, true_end).text.split()
    got_words = agent.heard_text.split()
    clear = next(e for e in events if isinstance(e, ClearSent))
    clear_sent_at = app.services.call_origins[truth.call_sid] + clear.at_ms / 1000.0
    return {
        "error_ms": agent.heard_ms - (true_end - agent.out_start_ms),
        "word_diff": abs(len(got_words) - len(true_words)),
        "stop_ms": (truth.clears[0].at - clear_sent_at) * 1000.0,
        "within_bounds": float(
            (agent.heard_lower_ms or 0) - 1
            <= true_end - agent.out_start_ms
            <= (agent.heard_upper_ms or 0) + 1
        ),
    }


async def run(calls: int, delays: list[float], jitter: float, verbose: bool = False) -> None:
    speech_phrase = HibariEngine().synthesize("Sorry, can I stop you there?")
    speech = phrase_to_mulaw(speech_phrase.samples, speech_phrase.rate)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'heard.db'}"
        with running_gateway(url, converse=False) as (base, app):
            for delay in delays:
                network_jitter = jitter if delay else 0.0
                results = []
                for n in range(calls):
                    network = Network(delay, network_jitter, seed=n)
                    results.append(
                        await one_call(base, app, speech, rng.uniform(300, 3000), network)
                    )
                errors = sorted(abs(r["error_ms"]) for r in results)
                if verbose:
                    print("  signed errors:", [round(r["error_ms"], 1) for r in results])
                signed = [r["error_ms"] for r in results]
                stops = [r["stop_ms"] for r in results]
                print(f"one-way delay {delay:.0f} +/- {network_jitter:.0f} ms, {calls} cut-ins:")
                print(
                    f"  |heard_ms error|  P50 {percentile(errors, 50):.1f}  "
                    f"P95 {percentile(errors, 95):.1f}  max {errors[-1]:.1f} ms  "
                    f"(mean signed {sum(signed) / len(signed):+.1f} ms)"
                )
                print(
                    f"  heard words off by  0: {sum(r['word_diff'] == 0 for r in results)}, "
                    f"1: {sum(r['word_diff'] == 1 for r in results)}, "
                    f">1: {sum(r['word_diff'] > 1 for r in results)}"
                )
                print(
                    f"  truth within reported bounds: "
                    f"{sum(r['within_bounds'] for r in results):.0f}/{calls}"
                )
                print(
                    f"  clear sent -> caller playout stopped  P50 {percentile(stops, 50):.1f}  "
                    f"P95 {percentile(stops, 95):.1f}  max {max(stops):.1f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--delays", default="0,60")
    parser.add_argument("--jitter", type=float, default=15.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    asyncio.run(
        run(args.calls, [float(d) for d in args.delays.split(",")], args.jitter, args.verbose)
    )


if __name__ == "__main__":
    main()
