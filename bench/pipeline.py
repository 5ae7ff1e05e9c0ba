"""Per-stage latency of the spoken pipeline on this machine, with the embedded models.

    python -m bench.pipeline [--calls 4] [--turns 5]

Simulated callers hold ``--calls`` conversations of ``--turns`` turns each (one
call at a time). Per turn, from the stored events (Metrics projection): VAD
end-of-turn delay (from the speech end the VAD found to its decision: the
300 ms of silence it waits, plus processing), STT final
after the end of turn, LLM time to first token, TTS time to first audio, and
the agent's first audio sent after the end of turn; and voice-to-voice as the
caller heard it (end of its speech -> first agent audio played). P50/P95.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import SpeechStopped, TranscriptPartial
from gateway.simulate import SimulatedCaller, Utterance, voice_to_voice_ms
from projections.metrics import percentile
from projections.replay import fold_all
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


async def run(calls: int, turns: int) -> None:
    voice = HibariEngine()
    lines = [voice.synthesize(q) for q in QUESTIONS]
    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "vad_end_of_turn_ms",
            "stt_final_ms",
            "llm_ttft_ms",
            "tts_first_audio_ms",
            "response_ms",
            "voice_to_voice_ms",
        )
    }
    rolling = 0
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(f"sqlite+aiosqlite:///{Path(tmp) / 'pipeline.db'}") as (base, app),
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
            for turn in fold_all(events).metrics.turns:
                for name, value in turn.latencies().items():
                    if name in samples and value is not None:
                        samples[name].append(value)
            t0 = seen(app).origins[truth.call_sid]
            rolling += sum(isinstance(e, TranscriptPartial) and e.rolling for e in events)
            for stopped in (e for e in events if isinstance(e, SpeechStopped)):
                # Caller audio arrives in real time from the stream's start, so the speech
                # end the VAD found (inbound axis) reached us at started_at + inbound_ms.
                speech_end_at = truth.started_at + stopped.inbound_ms / 1000
                samples["vad_end_of_turn_ms"].append(
                    (t0 + stopped.at_ms / 1000 - speech_end_at) * 1000
                )
    print(f"pipeline on this CPU, {calls} calls x {turns} turns ({rolling} rolling partials):")
    for name, values in samples.items():
        if values:
            print(
                f"  {name:22s} n={len(values):3d}  P50 {percentile(values, 50):7.0f} ms  "
                f"P95 {percentile(values, 95):7.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.turns))


if __name__ == "__main__":
    main()
