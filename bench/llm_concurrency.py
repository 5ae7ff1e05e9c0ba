"""LLM time to first token and to a whole reply when several calls ask at once.

    python -m bench.llm_concurrency [--levels 1,2,4,8] [--rounds 3]

For each way of serving the embedded model (one llama.cpp server with 2 threads
whose requests queue in arrival order; two servers with 1 thread each, requests
spread over them), N requests with different questions start together, as N
callers finishing their turns at the same moment would; each request is the
system prompt plus one question, streamed through the gateway's own client.
Prints TTFT and whole-reply P50/P95 per N, and any request that failed (a cut
stream is a failure: the issue this bench was written for).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import time
from dataclasses import dataclass

from actors.engines.language_model import ChatStream, EmbeddedServer, ModelUnavailable, warm_up
from gateway.config import Settings
from projections.metrics import percentile

QUESTIONS = [
    "Could I book a table for two tonight at eight?",
    "What time do you close on Sunday?",
    "Do you serve fish?",
    "Is there parking near the restaurant?",
    "Can I bring my dog?",
    "How much is the set menu?",
    "Do you have a table by the window?",
    "Can I change my booking to Friday?",
]


@dataclass
class Timing:
    ttft_ms: float | None
    total_ms: float
    failed: str = ""


def ask(url: str, question: str, system_prompt: str, max_tokens: int) -> Timing:
    chat = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
    start = time.monotonic()
    first: float | None = None
    try:
        for _ in ChatStream(url, chat, max_tokens=max_tokens, timeout_s=60.0):
            if first is None:
                first = (time.monotonic() - start) * 1000.0
    except (OSError, ModelUnavailable) as exc:
        return Timing(first, (time.monotonic() - start) * 1000.0, repr(exc)[:80])
    if first is None:
        return Timing(None, (time.monotonic() - start) * 1000.0, "empty reply")
    return Timing(first, (time.monotonic() - start) * 1000.0)


def measure(urls: list[str], levels: list[int], rounds: int, settings: Settings) -> None:
    for url in urls:
        warm_up(url, settings.agent.system_prompt)
    for level in levels:
        timings: list[Timing] = []
        for round_ in range(rounds):
            spread = itertools.cycle(urls)
            with concurrent.futures.ThreadPoolExecutor(level) as pool:
                futures = [
                    pool.submit(
                        ask,
                        next(spread),
                        QUESTIONS[(round_ + i) % len(QUESTIONS)],
                        settings.agent.system_prompt,
                        settings.max_reply_tokens,
                    )
                    for i in range(level)
                ]
                timings.extend(f.result() for f in futures)
        ttft = [t.ttft_ms for t in timings if t.ttft_ms is not None and not t.failed]
        total = [t.total_ms for t in timings if not t.failed]
        failed = [t.failed for t in timings if t.failed]
        print(
            f"  N={level}: TTFT P50 {percentile(ttft, 50) or 0:6.0f} ms  "
            f"P95 {percentile(ttft, 95) or 0:6.0f} ms   whole reply P50 "
            f"{percentile(total, 50) or 0:6.0f} ms  P95 {percentile(total, 95) or 0:6.0f} ms   "
            f"failed {len(failed)}/{len(timings)} {sorted(set(failed))[:2]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layouts", default="queue,two")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    settings = Settings()
    layouts = {"queue": [2], "two": [1, 1]}
    for name in args.layouts.split(","):
        threads = layouts[name]
        servers = [EmbeddedServer(threads=n) for n in threads]
        print(f"{name}: {len(servers)} server(s), threads {threads}")
        try:
            for server in servers:
                server.start()
            measure([s.url for s in servers], levels, args.rounds, settings)
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
