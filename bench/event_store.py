"""Event store and projection benchmark.

    python -m bench.event_store [--events 100000] [--calls 50] [--db URL]

1. Append throughput through the GroupCommitWriter (one request per event, as
   actors record them, from many calls at once) against one event per
   transaction; ack latency percentiles (submit -> durable).
2. Fold rate: a synthetic 30-minute call (20 ms AudioSent frames while the agent
   talks, a mark per word, barge-ins) replayed through every projection.

Targets (issue #2): >= 20,000 events/s appended on SQLite; >= 200,000 events/s folded.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from events.catalogue import (
    AudioSent,
    BargeInDetected,
    CallEnded,
    CallStarted,
    ClearSent,
    Event,
    MarkPlayed,
    MarkSent,
    ReplyCompleted,
    ReplyRequested,
    ReplyTextGenerated,
    ReplyTruncated,
    SpeechStarted,
    SpeechStopped,
    SpeechSynthesized,
    TranscriptFinal,
    TranscriptPartial,
    WordTiming,
)
from events.database import create_engine, upgrade
from events.encryption import MasterKey
from events.group_commit import Ack, GroupCommitWriter
from events.store import EventStore
from projections import heard
from projections.metrics import percentile
from projections.replay import fold_all


def synthetic_call(call_sid: str, minutes: float = 30.0, seed: int = 7) -> list[Event]:
    """A realistic call: caller and agent alternate; one agent turn in four is interrupted."""
    rng = random.Random(seed)
    events: list[Event] = []
    now = 0.0
    out_ms = 0.0

    def add(kind: type[Event], **fields: object) -> None:
        events.append(kind(call_sid=call_sid, seq=len(events) + 1, at_ms=now, **fields))

    add(CallStarted, stream_sid="MZ" + call_sid, wall_time_unix=1.7e9)
    reply_id, caller_turn = 0, 0
    while now < minutes * 60_000:
        caller_turn += 1
        speech_ms = rng.uniform(1500, 6000)
        add(SpeechStarted, inbound_ms=now)
        for partial in range(int(speech_ms // 500)):
            now += 500
            add(TranscriptPartial, turn=caller_turn, text="words " * (partial + 1))
        now += 300
        add(SpeechStopped, inbound_ms=now, speech_ms=speech_ms)
        now += 250
        add(TranscriptFinal, turn=caller_turn, text="please book me a table for two tomorrow")
        reply_id += 1
        add(ReplyRequested, reply_id=reply_id, caller_turn=caller_turn)
        n_words = rng.randint(12, 40)
        for _ in range(n_words):
            now += 30
            add(ReplyTextGenerated, reply_id=reply_id, text="word ")
        interrupted_at = rng.randint(3, n_words) if rng.random() < 0.25 else None
        start = out_ms
        for segment in range(0, n_words, 8):
            count = min(8, n_words - segment)
            words = tuple(WordTiming("word", i * 320.0, i * 320.0 + 300.0) for i in range(count))
            add(
                SpeechSynthesized,
                reply_id=reply_id,
                segment=segment,
                text=" ".join(["word"] * count),
                words=words,
                audio_ms=count * 320.0,
                out_start_ms=out_ms,
            )
            for word in range(count):
                if interrupted_at is not None and segment + word >= interrupted_at:
                    break
                for _ in range(16):  # 320 ms of 20 ms frames per word
                    add(AudioSent, reply_id=reply_id, out_start_ms=out_ms, out_end_ms=out_ms + 20)
                    out_ms += 20
                    now += 20
                add(MarkSent, name=f"w{segment + word}", reply_id=reply_id, out_ms=out_ms)
                add(MarkPlayed, name=f"w{segment + word}", reply_id=reply_id, out_ms=out_ms - 200)
        if interrupted_at is not None:
            add(BargeInDetected, reply_id=reply_id, inbound_ms=now)
            add(ClearSent, reply_id=reply_id, out_sent_ms=out_ms)
            add(
                ReplyTruncated,
                reply_id=reply_id,
                heard_ms=out_ms - start - 200,
                heard_lower_ms=0.0,
                heard_upper_ms=out_ms - start,
            )
        add(
            ReplyCompleted,
            reply_id=reply_id,
            finish_reason="cancelled" if interrupted_at else "stop",
        )
    add(CallEnded, reason="hangup")
    return events


async def append_rate(
    url: str, streams: list[list[Event]], synchronous: str, master_key: MasterKey | None = None
) -> None:
    """Saturating throughput: every call records as fast as it can (``master_key``: with
    callers' words encrypted, as a production gateway stores them)."""
    engine = create_engine(url, synchronous=synchronous)
    store = EventStore(engine, master_key)
    baseline_n = 1000
    baseline_events = synthetic_call(f"CAbaseline{synchronous}", minutes=5)[:baseline_n]
    started = time.perf_counter()
    for event in baseline_events:  # what a naive writer does: one event per transaction
        await store.append(event.call_sid, [event])
    single_rate = baseline_n / (time.perf_counter() - started)

    writer = GroupCommitWriter(store)
    await writer.start()

    async def one_call(events: list[Event]) -> None:
        # Actors submit and move on; batches commit in order, so the last ack covers the rest.
        future = None
        for index, event in enumerate(events):
            future = writer.submit(event.call_sid, [event])
            if index % 50 == 49:
                await asyncio.sleep(0)
        assert future is not None
        await future.settled()

    started = time.perf_counter()
    await asyncio.gather(*(one_call(events) for events in streams))
    elapsed = time.perf_counter() - started
    await writer.close()
    await engine.dispose()
    grouped_rate = writer.events_committed / elapsed
    print(
        f"append  {engine.dialect.name} synchronous={synchronous}"
        f"{'  encrypted' if master_key else ''}  {len(streams)} calls, "
        f"{writer.events_committed:,} events"
    )
    print(f"  one event per transaction : {single_rate:10,.0f} events/s")
    print(
        f"  group commit              : {grouped_rate:10,.0f} events/s  "
        f"({grouped_rate / single_rate:.0f}x; target >= 20,000), "
        f"{writer.events_committed / writer.batches:.0f} events/batch"
    )


async def ack_latency(
    url: str, synchronous: str, calls: int, events_per_s: float, seconds: float
) -> None:
    """Ack latency (submit -> committed) at a steady load from ``calls`` live calls."""
    engine = create_engine(url, synchronous=synchronous)
    writer = GroupCommitWriter(EventStore(engine))
    await writer.start()
    latencies: list[float] = []
    streams = [synthetic_call(f"CAlat{n}", minutes=5, seed=n) for n in range(calls)]
    period = calls / events_per_s

    async def one_call(events: list[Event]) -> None:
        next_at = time.perf_counter()
        for event in events[: int(seconds / period)]:
            submitted = time.perf_counter()

            def record(_ack: Ack, t: float = submitted) -> None:
                latencies.append(time.perf_counter() - t)

            writer.submit(event.call_sid, [event]).add_done_callback(record)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    await asyncio.gather(*(one_call(events) for events in streams))
    await writer.close()
    await engine.dispose()
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"  ack latency at {events_per_s:,.0f} events/s from {calls} calls ({len(ms):,} acks): "
        f"P50 {percentile(ms, 50):.1f} ms  P95 {percentile(ms, 95):.1f} ms  "
        f"P99 {percentile(ms, 99):.1f} ms  max {ms[-1]:.1f} ms (bound: 50 ms)"
    )


def bench_fold() -> None:
    events = synthetic_call("CAfold", minutes=30)
    for label, run in (
        ("heard only", lambda: heard.fold_all(events)),
        ("all projections", lambda: fold_all(events)),
    ):
        rates = []
        for _ in range(5):
            started = time.perf_counter()
            run()
            rates.append(len(events) / (time.perf_counter() - started))
        rates.sort()
        print(
            f"fold {label:16s}: {len(events):,} events of a 30-minute call; "
            f"median {rates[2]:,.0f} events/s (min {rates[0]:,.0f}; target >= 200,000)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    per_call = args.events // args.calls
    streams = [
        synthetic_call(f"CAbench{n}", minutes=5, seed=n)[:per_call] for n in range(args.calls)
    ]
    for synchronous in ("NORMAL", "FULL"):
        with tempfile.TemporaryDirectory() as tmp:
            url = args.db or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            asyncio.run(append_rate(url, streams, synchronous))
            asyncio.run(
                ack_latency(url, synchronous, calls=args.calls, events_per_s=5000, seconds=5)
            )
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        asyncio.run(append_rate(url, streams, "FULL", MasterKey(b"k" * 32)))
    bench_fold()


if __name__ == "__main__":
    main()
