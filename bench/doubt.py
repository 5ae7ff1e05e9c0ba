"""Doubt: how often the agent asks again instead of answering, on clear and degraded speech.

Every utterance of both test voices, clear, in noise (0 and -5 dB SNR) and mumbled, over
the phone's mu-law, transcribed by the gateway's STT engine (``EARSHOT_STT_MODEL`` for
another model). For the thresholds in force (``actors/core/doubt.py``: the mean token
log probability and the weakest token's) and around them: the share of turns asked
about in each condition and of its misheard turns (WER above 0.3), and as a detector of
misheard turns, precision and recall. The decision is made from the recogniser's own
scores, which a busy CPU does not change: the corpus is transcribed a second time while
two threads burn the cores, and the decisions must be the same (timing is what changes:
P50/P95 per turn are printed for both).

    python -m bench.doubt
"""

from __future__ import annotations

import statistics
import threading
import time

import jiwer

from actors.core.doubt import COMPRESSION_ABOVE, LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, unsure
from actors.engines.speech_recognition import Transcript, WhisperEngine
from tests.support.degraded import CONDITIONS, Sample, corpus, words

MISHEARD_WER = 0.3
IN_FORCE = (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW)
NO_WEAKEST = -99.0  # the mean alone, as before the weakest token was read
SETTINGS = [
    (-0.7, NO_WEAKEST),
    (LOGPROB_BELOW, NO_WEAKEST),
    (-1.0, NO_WEAKEST),
    (LOGPROB_BELOW, -1.4),
    IN_FORCE,
    (LOGPROB_BELOW, -1.8),
    (LOGPROB_BELOW, -2.2),
    (-1.0, WEAKEST_TOKEN_BELOW),
]


def transcribe_all(
    engine: WhisperEngine, samples: list[Sample]
) -> tuple[list[Transcript], list[float]]:
    transcripts, times = [], []
    for sample in samples:
        started = time.perf_counter()
        transcripts.append(engine.transcribe(sample.pcm16k))
        times.append((time.perf_counter() - started) * 1000.0)
    return transcripts, times


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    engine = WhisperEngine()
    samples = list(corpus())
    transcripts, alone_ms = transcribe_all(engine, samples)
    misheard = [
        jiwer.wer(words(s.text), words(t.text)) > MISHEARD_WER
        for s, t in zip(samples, transcripts, strict=True)
    ]
    print(f"{len(samples)} turns: {sum(misheard)} misheard (WER > {MISHEARD_WER})")
    for mean_below, weakest_below in SETTINGS:
        asks = [
            t.avg_logprob < mean_below
            or t.weakest_token_logprob < weakest_below
            or t.compression_ratio > COMPRESSION_ABOVE
            for t in transcripts
        ]
        by_condition = []
        for condition in CONDITIONS:
            picked = [
                (a, m)
                for a, m, s in zip(asks, misheard, samples, strict=True)
                if s.condition == condition
            ]
            wrong = [a for a, m in picked if m]
            by_condition.append(
                f"{condition} {sum(a for a, _ in picked) / len(picked):4.0%}"
                f" ({sum(wrong)}/{len(wrong)} misheard)"
            )
        hits = sum(a and m for a, m in zip(asks, misheard, strict=True))
        precision = hits / max(sum(asks), 1)
        recall = hits / max(sum(misheard), 1)
        marker = "  <- in force" if (mean_below, weakest_below) == IN_FORCE else ""
        print(
            f"mean < {mean_below:5.2f}, weakest < {weakest_below:5.2f}: asks on "
            + ", ".join(by_condition)
            + f"; misheard: precision {precision:.2f}, recall {recall:.2f}{marker}"
        )
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    burners = [threading.Thread(target=burn, daemon=True) for _ in range(2)]
    for burner in burners:
        burner.start()
    try:
        loaded, loaded_ms = transcribe_all(engine, samples)
    finally:
        stop.set()
    same = [unsure(a) == unsure(b) for a, b in zip(transcripts, loaded, strict=True)]
    print(f"decisions the same with two busy threads: {sum(same)}/{len(same)}")
    for label, times in (("alone", alone_ms), ("two busy threads", loaded_ms)):
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(f"STT per turn, {label}: P50 {p50:.0f} ms, P95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
