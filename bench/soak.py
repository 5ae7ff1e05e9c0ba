"""Does a gateway give back what its calls took? Many calls in a row, then one long call.

    python -m bench.soak [--calls 200] [--long-s 1800]

A real conversing gateway in this process (the embedded LLM answers): ``--calls``
short calls one after another (greeted, then hung up on), then one call of ``--long-s``
seconds in which the caller asks something every 15 s and cuts into the answer with a
second line, so each turn has a reply, a barge-in and a cancelled generation. After a
warm-up call and after each phase it prints the process's RSS, threads, open file
descriptors and live actors; the call-scoped ones (threads, fds, actors) must come back
to the warm-up's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pykka

from events.catalogue import SilenceFilled
from gateway.simulate import SimulatedCaller, Utterance
from projections.replay import fold_all
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call
from tests.support.voices import spoken


def footprint() -> dict[str, float]:
    gc.collect()
    status = Path("/proc/self/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {
        "rss_mb": rss_kb / 1024,
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
        "actors": len(pykka.ActorRegistry.get_all()),
    }


def show(label: str, now: dict[str, float], base: dict[str, float]) -> None:
    print(
        f"{label:<28} RSS {now['rss_mb']:7.1f} MB ({now['rss_mb'] - base['rss_mb']:+.1f})  "
        f"threads {now['threads']:.0f} ({now['threads'] - base['threads']:+.0f})  "
        f"fds {now['fds']:.0f} ({now['fds'] - base['fds']:+.0f})  "
        f"actors {now['actors']:.0f} ({now['actors'] - base['actors']:+.0f})"
    )


async def settle() -> None:
    """Let ended calls' actors and timers finish stopping."""
    await asyncio.sleep(2.0)


async def watch(baseline: dict[str, float], every_s: float) -> None:
    """The footprint during the long call, every ``every_s``: growth, or a plateau."""
    started = asyncio.get_running_loop().time()
    while True:
        await asyncio.sleep(every_s)
        elapsed = asyncio.get_running_loop().time() - started
        show(f"long call at {elapsed:.0f} s (live)", footprint(), baseline)


async def run(calls: int, long_s: float) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(f"sqlite+aiosqlite:///{tmp}/soak.db") as (base, app),
    ):
        # The caller's line, synthesized before the baseline: the bench's own voice model
        # is not the gateway's memory.
        asked = spoken("What time do you close tonight, and do you have fish?")
        cut_in = spoken("Sorry, one more thing.")
        await SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=3.0).run()
        await settle()
        baseline = footprint()
        show("after a warm-up call", baseline, baseline)
        for n in range(calls):
            caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=3.0)
            await caller.run()
            if (n + 1) % 50 == 0:
                show(f"after {n + 1} calls (live)", footprint(), baseline)
        await settle()
        show(f"after {calls} short calls", footprint(), baseline)
        if long_s > 0:
            script = [
                utterance
                for k in range(1, int(long_s // 15))
                for utterance in (
                    Utterance(asked, at_s=15.0 * k),
                    Utterance(cut_in, cut_in_after_agent_ms=800),
                )
            ]
            long_call = SimulatedCaller(
                base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=long_s
            )
            watching = asyncio.create_task(watch(baseline, every_s=300.0))
            truth = await long_call.run()
            watching.cancel()
            await settle()
            events = await stored_call(app, truth.call_sid, wait_s=30.0)
            filled = Counter(e.action for e in events if isinstance(e, SilenceFilled))
            answered = sum(
                1
                for t in fold_all(events).heard.agent_turns()
                if t.reason == "caller_turn" and t.heard_text
            )
            print(
                f"long call: {len(truth.clears)} barge-ins cleared the agent's audio; "
                f"{answered} replies; dead air filled: {filled['hold']} holding lines, "
                f"{filled['give_up']} replies given up"
            )
            show(f"after a {long_s:.0f} s call", footprint(), baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--long-s", type=float, default=1800.0)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.long_s))


if __name__ == "__main__":
    main()
