"""The audio path's cost per 20 ms frame, and the pacer's timing under load.

    python -m bench.audio_path [--frames 20000] [--calls 4] [--seconds 12]

1. Microseconds per 20 ms frame: inbound decode+resample (mu-law 8 kHz -> PCM16
   16 kHz), outbound resample+encode (24 kHz float -> 8 kHz mu-law, per phrase,
   counted per frame), the whole inbound path up to the VAD (JSON parse, base64,
   validation, decode, resample), and that path with silero VAD inference and turn
   logic included. Target < 1 ms per frame up to the VAD.
2. Pacer lateness (how late each scheduled 20 ms frame left, ms) with ``--calls``
   simultaneous calls playing long replies, under two loads: two threads of TTS
   synthesis (model work, as the pipeline does it), and two pure-Python threads
   that hold the GIL (the worst case). Target P99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from actors.core.audio_formats import InboundConverter, phrase_to_mulaw
from actors.core.twilio_stream import CallerAudio, TwilioStreamProtocol
from actors.engines.speech_synthesis import HibariEngine
from actors.engines.vad import SileroVadModel
from actors.speech_detector import SpeechDetector
from gateway import playout
from gateway.simulate import SimulatedCaller
from projections.metrics import percentile
from tests.support.gateway import AUTH_TOKEN, running_gateway

SID = "MZ" + "0" * 32


def _per_frame_us(fn: object, frames: int) -> list[float]:
    samples = []
    for _ in range(frames):
        started = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter_ns() - started) / 1000)
    return sorted(samples)


def bench_frames(frames: int) -> None:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(160) * 4000).astype(np.int16)
    from actors.core.audio_formats import pcm16_to_mulaw

    mulaw = pcm16_to_mulaw(speech)
    converter = InboundConverter()
    inbound = _per_frame_us(lambda: converter.convert(mulaw), frames)

    phrase = (rng.standard_normal(24000 * 3) * 0.2).astype(np.float32)  # a 3 s phrase
    phrases = max(frames // 150, 20)
    outbound = [us / 150 for us in _per_frame_us(lambda: phrase_to_mulaw(phrase, 24000), phrases)]

    protocol = TwilioStreamProtocol()
    protocol.receive(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": SID,
                "start": {
                    "accountSid": "AC",
                    "streamSid": SID,
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        ),
        0.0,
    )
    payload = base64.b64encode(mulaw).decode()
    texts = [
        json.dumps(
            {
                "event": "media",
                "sequenceNumber": str(n + 2),
                "streamSid": SID,
                "media": {
                    "track": "inbound",
                    "chunk": str(n + 1),
                    "timestamp": str(n * 20),
                    "payload": payload,
                },
            }
        )
        for n in range(frames)
    ]
    path_converter = InboundConverter()
    frame_iter = iter(texts)

    def to_vad() -> None:
        for observation in protocol.receive(next(frame_iter), 0.0):
            if isinstance(observation, CallerAudio):
                path_converter.convert(observation.payload)

    whole = _per_frame_us(to_vad, frames)
    detector = SpeechDetector(SileroVadModel().stream())
    pcm = InboundConverter().convert(mulaw)
    with_vad = [
        us + whole[len(whole) // 2] for us in _per_frame_us(lambda: detector.feed(pcm), frames)
    ]
    for label, values in (
        ("inbound decode+resample", inbound),
        ("outbound resample+encode (per frame)", outbound),
        ("inbound path to the VAD", whole),
        ("inbound path with VAD inference", with_vad),
    ):
        print(
            f"{label:38s} P50 {percentile(values, 50):6.1f} us  "
            f"P95 {percentile(values, 95):6.1f} us"
            f"  P99 {percentile(values, 99):6.1f} us"
        )
    total = percentile(whole, 50) + percentile(outbound, 50)  # type: ignore[operator]
    print(
        f"{'total per frame, in + out (P50)':38s} {total:6.1f} us  (target < 1000 us, "
        f"{1000 / total:.0f}x headroom)"
    )


def _synthesizing(stop: threading.Event, engine: HibariEngine) -> None:
    """Model work as the pipeline does it: onnxruntime and numpy, mostly outside the GIL."""
    while not stop.is_set():
        engine.synthesize("The pipeline is busy synthesising another reply right now.")


def _pure_python(stop: threading.Event, engine: HibariEngine) -> None:
    """The worst case: a thread that never leaves the interpreter (holds the GIL)."""
    while not stop.is_set():
        total = 0
        for n in range(200_000):
            total += n * n


async def bench_pacer(calls: int, seconds: float, load: str) -> None:
    long_reply = " ".join(["Thanks for waiting, I am looking that up for you now."] * 12)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(
            f"sqlite+aiosqlite:///{Path(tmp) / 'pacer.db'}", converse=False, greeting=long_reply
        ) as (
            base,
            _app,
        ),
    ):
        stop = threading.Event()
        engine = HibariEngine()
        target = _synthesizing if load == "tts" else _pure_python
        workers = [
            threading.Thread(target=target, args=(stop, engine), daemon=True) for _ in range(2)
        ]
        playout.LATENESS_SAMPLES.clear()
        for worker in workers:
            worker.start()
        try:
            callers = [
                SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=seconds)
                for _ in range(calls)
            ]
            await asyncio.gather(*(caller.run() for caller in callers))
        finally:
            stop.set()
        late = sorted(playout.LATENESS_SAMPLES)
        label = "TTS synthesis" if load == "tts" else "pure-Python (GIL-holding)"
        print(
            f"pacer lateness, {calls} calls + 2 threads of {label}, {len(late)} frames: "
            f"P50 {percentile(late, 50):.2f}  P95 {percentile(late, 95):.2f}  "
            f"P99 {percentile(late, 99):.2f}  max {late[-1]:.2f} ms  (target P99 <= 5 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    bench_frames(args.frames)
    for load in ("tts", "python"):
        asyncio.run(bench_pacer(args.calls, args.seconds, load))


if __name__ == "__main__":
    main()
