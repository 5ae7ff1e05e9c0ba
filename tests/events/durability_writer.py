"""A writer process for the durability test: appends as fast as it can and prints each ack.

``python -m tests.events.durability_writer DB_URL CALLS`` writes realistic agent
turns for CALLS calls concurrently through one GroupCommitWriter, and prints
``ACK <call_sid> <seq>`` only once an append's future has resolved (committed).
It never stops by itself: the test kills it with SIGKILL mid-commit.
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial

from events.catalogue import AudioSent, CallStarted, Event, MarkPlayed, MarkSent, ReplyRequested
from events.database import create_engine
from events.group_commit import Ack, GroupCommitWriter
from events.store import EventStore


def _ack(call_sid: str, seq: int, ack: Ack) -> None:
    if ack.exception() is not None:
        return
    sys.stdout.write(f"ACK {call_sid} {seq}\n")
    sys.stdout.flush()


async def _one_call(writer: GroupCommitWriter, call_sid: str) -> None:
    seq = 0

    def next_event(kind: type[Event], **fields: object) -> Event:
        nonlocal seq
        seq += 1
        return kind(call_sid=call_sid, seq=seq, at_ms=seq * 20.0, **fields)

    out_ms, reply_id = 0.0, 0
    previous_burst = writer.submit(
        call_sid, [next_event(CallStarted, stream_sid="MZ" + call_sid, wall_time_unix=1.7e9)]
    )
    while True:
        reply_id += 1
        burst = [next_event(ReplyRequested, reply_id=reply_id)]
        for _ in range(25):
            burst.append(
                next_event(
                    AudioSent, reply_id=reply_id, out_start_ms=out_ms, out_end_ms=out_ms + 20
                )
            )
            out_ms += 20
        burst.append(next_event(MarkSent, name=f"m{reply_id}", reply_id=reply_id, out_ms=out_ms))
        burst.append(next_event(MarkPlayed, name=f"m{reply_id}", reply_id=reply_id, out_ms=out_ms))
        for event in burst:  # one request per event, as actors record them
            future = writer.submit(call_sid, [event])
            future.add_done_callback(partial(_ack, call_sid, event.seq))
        # Keep two bursts in flight: commits run back to back, with no unbounded queue.
        await previous_burst.settled()
        previous_burst = future


async def main(url: str, calls: int) -> None:
    engine = create_engine(url)
    writer = GroupCommitWriter(EventStore(engine))
    await writer.start()
    await asyncio.gather(*(_one_call(writer, f"CAdur{n}") for n in range(calls)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
