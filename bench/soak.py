"""Does a gateway give back what its calls took? Many calls in a row, then one long call.

    python -m bench.soak [--calls 200] [--long-s 1800]

A real gateway in this process (greets and listens, so the calls are cheap and the
count is high): ``--calls`` short calls one after another, then one call of
``--long-s`` seconds in which the caller speaks every 15 s. After a warm-up call and
after each phase it prints the process's RSS, threads, open file descriptors and live
actors; the call-scoped ones (threads, fds, actors) must come back to the warm-up's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import threading
from pathlib import Path

import pykka

from gateway.simulate import SimulatedCaller, Utterance
from tests.support.gateway import AUTH_TOKEN, running_gateway
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


async def run(calls: int, long_s: float) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_gateway(f"sqlite+aiosqlite:///{tmp}/soak.db", converse=False) as (base, _app),
    ):
        # The caller's line, synthesized before the baseline: the bench's own voice model
        # is not the gateway's memory.
        said = spoken("Yes, I am still here. Could you tell me more?")
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
                Utterance(said, at_s=t) for t in [15.0 * k for k in range(1, int(long_s // 15))]
            ]
            long_call = SimulatedCaller(
                base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=long_s
            )
            await long_call.run()
            await settle()
            show(f"after a {long_s:.0f} s call", footprint(), baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--long-s", type=float, default=1800.0)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.long_s))


if __name__ == "__main__":
    main()
