"""How many calls one gateway holds: N simultaneous conversations on the embedded models.

    python -m bench.load [--levels 1,2,4,6,8] [--rounds 2]

(``EARSHOT_LLM_SERVERS=2`` measures two embedded LLM servers instead of the default.)

For each N, ``--rounds`` times, N simulated callers dial one gateway (the
``make run`` defaults: silero VAD, Whisper tiny.en, Qwen2.5 0.5B on llama.cpp,
hibari), starting 0.7 s apart,
each with its own script: a question once the greeting is over, a second question
cutting into the answer (a barge-in), a third once the agent is quiet. Half the
callers sit behind a 60 +/- 15 ms network. Per N, from the callers' ears and the
stored events:

* voice-to-voice P50/P95/P99 (end of the caller's voice -> the agent's voice at
  the caller: the filler a late reply starts with counts, as the caller hears it),
  the answer's own latency P50/P95 (end of the caller's turn -> the first audio of the
  reply that answers it, at the gateway: the filler does not count), stop latency
  P95 (caller's voice onset -> agent audio stopped at the caller), |heard_ms error|
  P95 (Heard projection vs the caller's play head);
* LLM time to first token P50/P95, pacer lateness P99 (all calls' frames);
* failed or empty replies, fillers and holding lines (and how many of each stopped
  short for the answer), dead-air turns (Liveness);
* machine CPU % (of all cores) and gateway RSS.

Capacity: the largest N with no dead-air turn, the answer's P95 at most 2 s (not
voice-to-voice, which a filler caps; a fixed bound, below the 2.5 s at which the
holding line is said: relative to a single call's, a faster single call would lower
the capacity), and pacer lateness P99 at most 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import AnyEvent, LineYielded, ReplyCompleted, SilenceFilled, StageFailed
from gateway.app import EarshotApp
from gateway.playout import LATENESS_SAMPLES
from gateway.simulate import (
    ClearTruth,
    Network,
    SimulatedCaller,
    Truth,
    Utterance,
    stop_latencies_ms,
    voice_to_voice_ms,
)
from projections import liveness
from projections.heard import AgentTurn
from projections.metrics import percentile
from projections.replay import fold_all
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call

SCRIPTS = [
    ("Hi, I would like to book a table for two tonight.", "Sorry, is there parking?",
     "Thank you, that is all."),
    ("What time do you close on Sunday?", "And what about Saturday?", "Great, thanks."),
    ("Do you serve fish?", "Wait, do you have a vegetarian dish?", "Okay, thank you."),
    ("Can I bring my dog?", "Sorry, is the terrace open?", "Lovely, goodbye."),
    ("How much is the set menu?", "Is that with wine?", "All right, thanks."),
    ("Do you have a table by the window?", "Actually, can I book for Friday?", "Perfect."),
    ("Are you open for lunch today?", "Sorry, until what time?", "Thank you very much."),
    ("Can I change my booking to Friday?", "Wait, for four people?", "That is all, thanks."),
]  # fmt: skip
STAGGER_S = 0.7
ANSWER_P95_LIMIT_MS = 2000.0  # a call fits while its answers come within this, P95
CALL_S = 48.0


@dataclass
class Level:
    n: int
    voice_to_voice: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    heard_errors: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    failed_replies: int = 0
    empty_replies: int = 0
    fillers: int = 0
    fillers_cut: int = 0  # stopped at a clause's end: the answer was ready
    holds: int = 0
    holds_cut: int = 0
    holds_inside: int = 0  # for an answer that went quiet after it began
    dead_air: int = 0
    reply_gaps: list[float] = field(default_factory=list)  # quiet inside answers, >= 100 ms
    silent_gaps: int = 0  # of them, past the bound
    turns: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _score_call(level: Level, events: list[AnyEvent], truth: Truth) -> None:
    level.voice_to_voice.extend(voice_to_voice_ms(truth))
    view = fold_all(events)
    for metrics in view.metrics.turns:
        latencies = metrics.latencies()
        if metrics.reason != "caller_turn":  # the LLM's, not a fixed line
            continue
        if (ttft := latencies.get("llm_ttft_ms")) is not None:
            level.ttft.append(ttft)
        if (answer := latencies.get("response_ms")) is not None:
            level.answers.append(answer)
    agent_turns = view.heard.agent_turns()
    generated = {t.reply_id: t.generated_text for t in agent_turns}
    reasons = {t.reply_id: t.reason for t in agent_turns}
    for event in events:
        if isinstance(event, StageFailed) and event.stage == "llm":
            level.failed_replies += 1
        elif isinstance(event, ReplyCompleted) and event.finish_reason != "cancelled":
            level.empty_replies += not generated.get(event.reply_id, "").strip()
        elif isinstance(event, SilenceFilled):
            level.fillers += event.action == "filler"
            level.holds += event.action != "filler"
            level.holds_inside += event.waiting_for in ("more", "tool")
        elif isinstance(event, LineYielded):
            level.fillers_cut += reasons.get(event.reply_id) == "filler"
            level.holds_cut += reasons.get(event.reply_id) == "hold"
    end_ms = events[-1].at_ms if events else 0.0
    state = liveness.fold_all(events)
    level.dead_air += len(state.dead_air_turns(now_ms=end_ms))
    level.reply_gaps += state.reply_gaps_ms
    level.silent_gaps += len(state.silent_gaps())
    level.turns += sum(type(e).__name__ == "SpeechStopped" for e in events)
    for clear, turn in cut_turns(agent_turns, truth):
        assert turn.out_start_ms is not None
        level.heard_errors.append(abs(turn.heard_ms - (clear.head_ms - turn.out_start_ms)))
    level.stops += [stop_ms for _onset, stop_ms in stop_latencies_ms(truth)]


def cut_turns(turns: list[AgentTurn], truth: Truth) -> list[tuple[ClearTruth, AgentTurn]]:
    """Each clear the caller's phone obeyed, with the cut turn that was playing at its play
    head: the one whose audio started last before it (a clear may cut a filler and the
    answer queued behind it, so pairing clears and cut turns in order would not do)."""
    cut = [t for t in turns if t.interrupted and t.out_start_ms is not None]
    pairs = []
    for clear in truth.clears:
        started = [t for t in cut if (t.out_start_ms or 0.0) <= clear.head_ms]
        if started:
            pairs.append((clear, max(started, key=lambda t: t.out_start_ms or 0.0)))
    return pairs


async def _one_caller(
    base: str, script_index: int, index: int, lines: dict[str, bytes], rng: random.Random
) -> Truth:
    await asyncio.sleep(index * STAGGER_S)
    first, cut_in, last = SCRIPTS[script_index]
    script = [
        Utterance(lines[first], after_agent_quiet_ms=600.0, text=first),
        Utterance(lines[cut_in], cut_in_after_agent_ms=rng.uniform(700, 1500), text=cut_in),
        Utterance(lines[last], after_agent_quiet_ms=600.0, text=last),
    ]
    network = Network(60.0, 15.0, seed=index) if index % 2 else Network()
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        script=script,
        network=network,
        hang_up_after_s=CALL_S,
        linger_s=8.0,
    )
    return await caller.run()


async def measure(
    base: str, app: EarshotApp, n: int, lines: dict[str, bytes], rounds: int
) -> Level:
    """``rounds`` times N calls at once, pooled (so one call's turns are not a whole P95)."""
    level = Level(n)
    LATENESS_SAMPLES.clear()
    busy0, total0 = _machine_busy()
    for round_ in range(rounds):
        rng = random.Random(n * 100 + round_)
        truths = await asyncio.gather(
            *(_one_caller(base, (i + round_) % len(SCRIPTS), i, lines, rng) for i in range(n))
        )
        for truth in truths:
            _score_call(level, await stored_call(app, truth.call_sid), truth)
    busy1, total1 = _machine_busy()
    level.cpu_percent = 100.0 * (busy1 - busy0) / max(total1 - total0, 1.0)
    level.rss_mb = _rss_mb()
    level.lateness = list(LATENESS_SAMPLES)
    return level


def _p(values: list[float], q: float) -> str:
    value = percentile(values, q)
    return "-" if value is None else f"{value:.0f}"


def report(levels: list[Level]) -> None:
    single_p95 = percentile(levels[0].answers, 95) or 0.0
    print(
        "| calls | voice-to-voice P50 / P95 / P99 ms | answer P50 / P95 ms | stop P95 ms "
        "| heard err P95 ms | LLM TTFT P50 / P95 ms | pacer P99 ms | failed / empty replies "
        "| fillers / holds (cut short; inside answers) | dead-air turns "
        "| gaps in answers: n, P99 / max ms (past the bound) | CPU % | RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    capacity = 0
    for lv in levels:
        v2v = lv.voice_to_voice
        pacer = percentile(lv.lateness, 99)
        print(
            f"| {lv.n} | {_p(v2v, 50)} / {_p(v2v, 95)} / {_p(v2v, 99)} "
            f"| {_p(lv.answers, 50)} / {_p(lv.answers, 95)} | {_p(lv.stops, 95)} "
            f"| {percentile(lv.heard_errors, 95) or 0:.1f} | {_p(lv.ttft, 50)} / "
            f"{_p(lv.ttft, 95)} | {pacer or 0:.1f} | {lv.failed_replies} / {lv.empty_replies} "
            f"| {lv.fillers} ({lv.fillers_cut}) / {lv.holds} ({lv.holds_cut}; {lv.holds_inside}) "
            f"| {lv.dead_air} of {lv.turns} "
            f"| {len(lv.reply_gaps)}, {_p(lv.reply_gaps, 99)} / {max(lv.reply_gaps, default=0):.0f}"
            f" ({lv.silent_gaps}) "
            f"| {lv.cpu_percent:.0f} | {lv.rss_mb:.0f} |"
        )
        fits = (
            lv.dead_air == 0
            and lv.silent_gaps == 0
            and (percentile(lv.answers, 95) or 0.0) <= ANSWER_P95_LIMIT_MS
            and (pacer or 0.0) <= 10.0
        )
        if fits:
            capacity = lv.n
    print(
        f"capacity on this machine: {capacity} calls "
        f"(0 dead air, answer P95 <= {ANSWER_P95_LIMIT_MS:.0f} ms, pacer P99 <= 10 ms;"
        f" a single call's answer P95: {single_p95:.0f} ms)"
    )


async def run(levels: list[int], rounds: int) -> None:
    voice = HibariEngine()
    texts = {line for script in SCRIPTS for line in script}
    lines = {}
    for text in texts:
        phrase = voice.synthesize(text)
        lines[text] = phrase_to_mulaw(phrase.samples, phrase.rate)
    results: list[Level] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(f"sqlite+aiosqlite:///{Path(tmp) / 'load.db'}", max_calls=1000) as (
            base,
            app,
        ),
    ):
        for n in levels:
            started = time.monotonic()
            results.append(await measure(base, app, n, lines, rounds))
            print(f"  N={n} done in {time.monotonic() - started:.0f} s", flush=True)
            await asyncio.sleep(2.0)
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,2,4,6,8")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run([int(n) for n in args.levels.split(",")], args.rounds))


if __name__ == "__main__":
    main()
