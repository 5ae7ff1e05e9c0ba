"""Doubt: how often the agent asks again instead of answering, on clear and degraded speech.

Every utterance of both test voices, clear, in noise (0 and -5 dB SNR) and mumbled, over
the phone's mu-law, transcribed by the gateway's STT engine (``EARSHOT_STT_MODEL`` for
another model). For the thresholds in force (``actors/core/doubt.py``: the mean token
log probability, the weakest token's, and how far the voice rises above the line's
noise) and around them: the share of turns asked
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

from actors.core.doubt import (
    COMPRESSION_ABOVE,
    LOGPROB_BELOW,
    NOISY_BELOW_DB,
    WEAKEST_TOKEN_BELOW,
    unsure,
)
from actors.engines.speech_recognition import Transcript, WhisperEngine
from tests.support.degraded import CONDITIONS, Sample, corpus, words

MISHEARD_WER = 0.3
IN_FORCE = (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, NOISY_BELOW_DB)
NO_WEAKEST = -99.0  # the mean alone, as before the weakest token was read
NO_NOISE = -99.0  # the recogniser's scores alone, as before the line's noise was judged
# (mean log probability below, weakest token below, voice over noise below dB)
SETTINGS = [
    (-0.7, NO_WEAKEST, NO_NOISE),
    (LOGPROB_BELOW, NO_WEAKEST, NO_NOISE),
    (LOGPROB_BELOW, -1.4, NO_NOISE),
    (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, NO_NOISE),
    (LOGPROB_BELOW, -2.2, NO_NOISE),
    (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, 9.0),
    (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, 10.0),
    IN_FORCE,
    (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, 15.0),
    (LOGPROB_BELOW, WEAKEST_TOKEN_BELOW, 20.0),
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
    for condition in CONDITIONS:
        pairs = zip(samples, transcripts, strict=True)
        levels = sorted(t.speech_to_noise_db for s, t in pairs if s.condition == condition)
        print(
            f"voice over the line's noise, {condition}: min {levels[0]:.1f}, "
            f"P50 {statistics.median(levels):.1f}, max {levels[-1]:.1f} dB"
        )
    for mean_below, weakest_below, noise_below in SETTINGS:
        asks = [
            t.avg_logprob < mean_below
            or t.weakest_token_logprob < weakest_below
            or t.compression_ratio > COMPRESSION_ABOVE
            or t.speech_to_noise_db < noise_below
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
        marker = "  <- in force" if (mean_below, weakest_below, noise_below) == IN_FORCE else ""
        print(
            f"mean < {mean_below:5.2f}, weakest < {weakest_below:5.2f}, "
            f"voice over noise < {noise_below:5.1f} dB: asks on "
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
