"""Per-stage latency of the spoken pipeline on this machine, with the embedded models.

    python -m bench.pipeline [--calls 4] [--turns 5] [--preemptive on|off|both]

Simulated callers hold ``--calls`` conversations of ``--turns`` turns each (one
call at a time). Per turn, from the stored events (Metrics projection): how
long after the voice's true end the VAD found the speech's end, the VAD
end-of-turn delay (from the speech end the VAD found to its decision: the
300 ms of silence it waits, plus processing), STT final
after the end of turn, LLM time to first token, TTS time to first audio, and
the agent's first audio sent after the end of turn; and voice-to-voice as the
caller heard it (end of its speech -> first agent audio played). P50/P95/P99.
With preemptive generation (the reply asked for at the turn's pause): how many replies
were begun early, how many of them answered and how many were dropped unheard (the
wasted work, per turn), and the head start the answered ones had. ``--preemptive both``
runs the calls without it, then with it, on the same gateway settings otherwise.
The slowest answers are listed with what they were (the tail, and what makes it).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import (
    AnyEvent,
    ReplyRequested,
    ReplySpeculated,
    SpeculationDropped,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from gateway.simulate import SimulatedCaller, Utterance, voice_to_voice_ms
from projections.metrics import ANSWER_REASON, percentile
from projections.replay import CallView, fold_all
from tests.support.gateway import AUTH_TOKEN, running_gateway, seen, stored_call

QUESTIONS = [
    "Hi, I would like to book a table for two tonight.",
    "What time do you close on Sunday?",
    "Do you serve fish?",
    "Is there parking near the restaurant?",
    "Can I bring my dog?",
    "How much is the set menu?",
    "Thank you, that is all.",
]


async def run(calls: int, turns: int, preemptive: bool) -> None:
    voice = HibariEngine()
    lines = [voice.synthesize(q) for q in QUESTIONS]
    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "vad_speech_end_lag_ms",
            "vad_end_of_turn_ms",
            "stt_final_ms",
            "llm_ttft_ms",
            "tts_first_audio_ms",
            "response_ms",
            "voice_to_voice_ms",
        )
    }
    rolling = 0
    slowest: list[tuple[float, str]] = []
    answered, dropped, head_start_ms = 0, 0, []
    db = "sqlite+aiosqlite:///{}/pipeline.db"
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(db.format(Path(tmp)), preemptive=preemptive) as (base, app),
    ):
        for call in range(calls):
            script = [
                Utterance(phrase_to_mulaw(p.samples, p.rate), after_agent_quiet_ms=600.0)
                for p in (lines[(call + n) % len(lines)] for n in range(turns))
            ]
            caller = SimulatedCaller(
                base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=8.0 + 9.0 * turns
            )
            truth = await caller.run()
            samples["voice_to_voice_ms"].extend(voice_to_voice_ms(truth))
            events = await stored_call(app, truth.call_sid)
            views = fold_all(events)
            for turn in views.metrics.turns:
                for name, value in turn.latencies().items():
                    if name in samples and value is not None:
                        samples[name].append(value)
            slowest.extend(tail_turns(events, views))
            t0 = seen(app).origins[truth.call_sid]
            rolling += sum(isinstance(e, TranscriptPartial) and e.rolling for e in events)
            begun = {e.reply_id: e.at_ms for e in events if isinstance(e, ReplySpeculated)}
            dropped += sum(isinstance(e, SpeculationDropped) for e in events)
            for request in (e for e in events if isinstance(e, ReplyRequested)):
                if request.reply_id in begun:
                    answered += 1
                    head_start_ms.append(request.at_ms - begun[request.reply_id])
            for stopped in (e for e in events if isinstance(e, SpeechStopped)):
                # Caller audio arrives in real time from the stream's start, so the speech
                # end the VAD found (inbound axis) reached us at started_at + inbound_ms.
                speech_end_at = truth.started_at + stopped.inbound_ms / 1000
                samples["vad_end_of_turn_ms"].append(
                    (t0 + stopped.at_ms / 1000 - speech_end_at) * 1000
                )
                # ...found after the voice's true end (its last audible 20 ms): the VAD's lag
                voice_ends = [end for _onset, end in truth.speech if end <= speech_end_at + 0.1]
                if voice_ends:
                    samples["vad_speech_end_lag_ms"].append((speech_end_at - voice_ends[-1]) * 1000)
    mode = "on" if preemptive else "off"
    print(
        f"pipeline on this CPU, {calls} calls x {turns} turns, preemptive {mode}"
        f" ({rolling} rolling partials):"
    )
    for name, values in samples.items():
        if values:
            print(
                f"  {name:22s} n={len(values):3d}  P50 {percentile(values, 50):7.0f} ms  "
                f"P95 {percentile(values, 95):7.0f} ms  P99 {percentile(values, 99):7.0f} ms"
            )
    print("  the slowest answers (first audio sent after the end of turn):")
    for line in sorted(slowest, reverse=True)[:TAIL_SHOWN]:
        print(f"    {line[0]:6,.0f} ms  {line[1]}")
    if preemptive:
        turns_taken = max(len(samples["llm_ttft_ms"]), 1)
        print(
            f"  replies begun at the pause: {answered + dropped}, answered {answered},"
            f" dropped unheard {dropped} ({dropped / turns_taken:.2f} per turn); head start"
            f" P50 {percentile(head_start_ms, 50) or 0:.0f} ms"
        )


TAIL_SHOWN = 5


def tail_turns(events: list[AnyEvent], view: CallView) -> list[tuple[float, str]]:
    """Each answer's wait (first audio sent after the end of turn) with what the turn
    was: the caller's words, whether a tool was due or called, and what the caller heard
    first (the filler, said when the answer is late, or the answer's first words)."""
    said = view.heard.agent_turns()
    asked = {e.turn: e.text for e in events if isinstance(e, TranscriptFinal)}
    requests = {e.reply_id: e for e in events if isinstance(e, ReplyRequested)}
    answers = sorted(t.reply_id for t in view.metrics.turns if t.reason == ANSWER_REASON)
    lines = []
    for turn in view.metrics.turns:
        wait = turn.latencies().get("response_ms")
        request = requests.get(turn.reply_id)
        if wait is None or request is None or turn.reason != ANSWER_REASON:
            continue
        following = [r for r in answers if r > turn.reply_id]
        before_next = following[0] if following else 1 << 30
        first = next(
            (t for t in said if t.reason == "filler" and turn.reply_id < t.reply_id < before_next),
            next((t for t in said if t.reply_id == turn.reply_id), None),
        )
        heard = " ".join(first.heard_text.split()[:6]) if first is not None else ""
        tool = " tool due," if turn.must_call else ""
        tool += " tool called," if turn.tool_called_at_ms is not None else ""
        caller = asked.get(request.caller_turn, "?") if request.caller_turn else "?"
        lines.append((wait, f"{caller!r} ->{tool} heard first {heard!r}"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--preemptive", choices=["on", "off", "both"], default="both")
    args = parser.parse_args()
    for mode in ("off", "on") if args.preemptive == "both" else (args.preemptive,):
        asyncio.run(run(args.calls, args.turns, preemptive=mode == "on"))


if __name__ == "__main__":
    main()
