"""How exactly does Earshot know what the caller heard? Simulated callers as ground truth.

    python -m bench.heard [--calls 10] [--cuts 5] [--networks 0,30:5,60:15] [--packet-ms 20]

Per network setting (one-way delay:jitter, ms), ``--calls`` calls (two at a
time). In each, the simulated caller cuts in ``--cuts`` times at random points
(300-2,500 ms into whatever the agent is saying: the greeting, then each reply);
in every other call the first cut-in comes in the greeting's first second
(150-1,000 ms), before the gateway has had a mark echoed. The caller's Twilio
plays whole 20 ms packets on a clock of its own (``--packet-ms 0``: continuous
playback, the model before).

Every cut-in is a real turn: the caller's words are transcribed (the real STT)
and answered. Replies come from an OpenAI-compatible endpoint that streams a
known, long reply and records every request, so the bench sees the exact
context the LLM was given.

Per barge-in it compares with the caller's truth:
* heard_ms error: the Heard projection (from the stored events) against where the
  caller's play head really was when the clear took effect;
* heard words: the projection's heard text against the words the caller really
  heard completely (the partial word apart);
* context accuracy: the agent turn in the next LLM request against the
  projection's heard text (must be equal) and against the truth;
* stop latency: the caller starting to talk over the agent -> the agent's audio
  stopping at the caller.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from bench.load import cut_turns
from gateway.app import EarshotApp
from gateway.simulate import Network, SimulatedCaller, Truth, Utterance, stop_latencies_ms
from projections.context import INTERRUPTED_MARKER
from projections.metrics import percentile
from projections.replay import fold_all, to_text
from projections.words import heard_words
from tests.support.fault_llm import FaultInjectingLlm, fault_injecting_llm
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call

REPLY = (
    "We open at noon every day and close at ten in the evening. Lunch is served until "
    "three, and dinner starts at six. The kitchen has fish, shellfish and a few meat "
    "dishes. Booking is a good idea on weekends, when the terrace fills up early."
)
# Requests, so each cut-in gets a new reply to cut into (a bare "wait" would get only the
# short acknowledgement, and "okay" a resumption).
CUT_IN_LINES = [
    "Sorry, do you have parking?",
    "What about lunch on Sunday?",
    "Can I bring my dog?",
    "Is the terrace open tonight?",
    "How much is the set menu?",
]


SLOW_STOP_S = 0.5  # a stop slower than this prints its call's timeline


@dataclass
class Results:
    errors_ms: list[float] = field(default_factory=list)
    early_errors_ms: list[float] = field(default_factory=list)  # cut-ins in the first second
    early_within_bounds: int = 0
    within_bounds: int = 0
    word_diffs: list[int] = field(default_factory=list)
    context_equal_projection: int = 0
    context_equal_truth: int = 0
    context_within_one_word: int = 0
    contexts: int = 0
    stops_ms: list[float] = field(default_factory=list)
    cuts_tried: int = 0
    cuts_seen: int = 0


def _assistant_texts(chat: dict[str, object]) -> list[str]:
    messages = chat.get("messages")
    assert isinstance(messages, list)
    return [
        str(m["content"]).replace(INTERRUPTED_MARKER, "").strip()
        for m in messages
        if m.get("role") == "assistant"
    ]


async def one_call(
    base: str,
    app: EarshotApp,
    llm: FaultInjectingLlm,
    lines: list[bytes],
    cuts: int,
    network: Network,
    rng: random.Random,
    results: Results,
    packet_ms: float,
) -> None:
    early = network.seed % 2 == 0  # this call's first cut-in comes in the first second
    script = [
        Utterance(
            lines[i % len(lines)],
            cut_in_after_agent_ms=rng.uniform(150, 1000)
            if early and i == 0
            else rng.uniform(300, 2500),
        )
        for i in range(cuts)
    ]
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        network=network,
        script=script,
        hang_up_after_s=20.0 + 8.0 * cuts,
        linger_s=4.0,
        packet_ms=packet_ms,
    )
    truth: Truth = await caller.run()
    await asyncio.sleep(0.5)
    events = await stored_call(app, truth.call_sid)
    turns = fold_all(events).heard.agent_turns()
    results.cuts_tried += cuts
    results.cuts_seen += len(truth.clears)
    chats = [c for c in llm.chats if c.get("user") == truth.call_sid]
    true_texts: dict[int, str] = {}
    for index, (clear, turn) in enumerate(cut_turns(turns, truth)):
        assert turn.out_start_ms is not None
        true_ms = clear.head_ms - turn.out_start_ms
        lower, upper = turn.heard_lower_ms or 0.0, turn.heard_upper_ms or 0.0
        error, within = turn.heard_ms - true_ms, lower - 1 <= true_ms <= upper + 1
        results.errors_ms.append(error)
        results.within_bounds += within
        if early and index == 0 and turn.reason == "greeting":
            results.early_errors_ms.append(error)
            results.early_within_bounds += within
        true_texts[turn.reply_id] = heard_words(turn.words, clear.head_ms).text
        got, want = turn.heard_text.split(), true_texts[turn.reply_id].split()
        results.word_diffs.append(abs(len(got) - len(want)))

    for _onset, stop_ms in stop_latencies_ms(truth):
        results.stops_ms.append(stop_ms)
        if stop_ms > SLOW_STOP_S * 1000.0:  # the timeline, to see why
            print(f"slow stop in {truth.call_sid}: {stop_ms:.0f} ms")
            print(to_text(fold_all(events), truth.call_sid))
    # The call's last LLM request holds every earlier agent turn, in order: compare each
    # interrupted one with the projection's heard text and with the caller's truth.
    chats = [c for c in llm.chats if c.get("user") == truth.call_sid]
    if chats:
        in_context = [t for t in turns if t.heard_text or t.interrupted]
        for turn, text in zip(in_context, _assistant_texts(chats[-1]), strict=False):
            if turn.reply_id not in true_texts:
                continue
            true_text = true_texts[turn.reply_id]
            results.contexts += 1
            results.context_equal_projection += text == turn.heard_text
            results.context_equal_truth += text == true_text
            results.context_within_one_word += (
                abs(len(text.split()) - len(true_text.split())) <= 1
                and text.split()[: len(true_text.split())] == true_text.split()[: len(text.split())]
            )


def report(delay: float, jitter: float, calls: int, r: Results) -> None:
    errors = sorted(abs(e) for e in r.errors_ms)
    print(f"one-way delay {delay:.0f} +/- {jitter:.0f} ms, {calls} calls:")
    print(f"  barge-ins: {r.cuts_seen} cleared of {r.cuts_tried} cut-ins")
    print(
        f"  |heard_ms error|  P50 {percentile(errors, 50):.1f}  P95 {percentile(errors, 95):.1f}"
        f"  P99 {percentile(errors, 99):.1f}  max {errors[-1]:.1f} ms"
        f"  (mean signed {sum(r.errors_ms) / len(errors):+.1f} ms)"
    )
    counts = Counter(round(e / 5.0) * 5 for e in errors)  # whole and half packets
    print("  |error| counts: " + ", ".join(f"{ms} ms: {n}" for ms, n in sorted(counts.items())))
    print(f"  truth within reported bounds: {r.within_bounds}/{len(errors)}")
    if r.early_errors_ms:
        early = sorted(abs(e) for e in r.early_errors_ms)
        print(
            f"  cut-ins in the greeting's first second: {len(early)}, |error| P50 "
            f"{percentile(early, 50):.1f}  max {early[-1]:.1f} ms, truth within bounds "
            f"{r.early_within_bounds}/{len(early)}"
        )
    diffs = r.word_diffs
    print(
        f"  heard words off by 0: {diffs.count(0)}, 1: {diffs.count(1)}, "
        f">1: {sum(d > 1 for d in diffs)}"
    )
    print(
        f"  LLM context = heard text: {r.context_equal_projection}/{r.contexts} "
        f"(= the caller's truth: {r.context_equal_truth}, within one word: "
        f"{r.context_within_one_word})"
    )
    stops = r.stops_ms
    print(
        f"  caller starts talking -> agent audio stops at the caller  P50 "
        f"{percentile(stops, 50):.0f}  P95 {percentile(stops, 95):.0f}  max {max(stops):.0f} ms"
    )


async def run(calls: int, cuts: int, networks: list[tuple[float, float]], packet_ms: float) -> None:
    voice = HibariEngine()
    lines = [phrase_to_mulaw(p.samples, p.rate) for p in map(voice.synthesize, CUT_IN_LINES)]
    rng = random.Random(5)
    with (
        tempfile.TemporaryDirectory() as tmp,
        fault_injecting_llm() as llm,
        running_gateway(
            f"sqlite+aiosqlite:///{Path(tmp) / 'heard.db'}",
            llm_url=llm.url,
            greeting="Hello, thanks for calling The Harbour. How can I help you today?",
        ) as (base, app),
    ):
        llm.reply = REPLY
        for delay, network_jitter in networks:
            results = Results()
            for first in range(0, calls, 2):
                await asyncio.gather(
                    *(
                        one_call(
                            base,
                            app,
                            llm,
                            lines,
                            cuts,
                            Network(delay, network_jitter, seed=n),
                            rng,
                            results,
                            packet_ms,
                        )
                        for n in range(first, min(first + 2, calls))
                    )
                )
            report(delay, network_jitter, calls, results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--cuts", type=int, default=5)
    parser.add_argument(
        "--networks", default="0,30:5,60:15", help="one-way delay[:+/- jitter] ms, each"
    )
    parser.add_argument("--packet-ms", type=float, default=20.0, help="0: continuous playout")
    args = parser.parse_args()
    networks = [
        (float(delay), float(jitter or 0))
        for delay, _, jitter in (n.partition(":") for n in args.networks.split(","))
    ]
    asyncio.run(run(args.calls, args.cuts, networks, args.packet_ms))


if __name__ == "__main__":
    main()
