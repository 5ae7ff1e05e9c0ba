"""Doubt: how often the agent asks again instead of answering, on clear and degraded speech.

Every utterance of both test voices, clear, in noise (0 and -5 dB SNR) and mumbled, over
the phone's mu-law, transcribed by the gateway's STT engine (``EARSHOT_STT_MODEL`` for
another model). For the threshold in force (``actors/core/doubt.py``) and around it:
the share of turns asked about in each condition, and as a detector of misheard turns
(WER above 0.3): precision and recall. The decision is made from the recogniser's own
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

from actors.core.doubt import COMPRESSION_ABOVE, LOGPROB_BELOW, unsure
from actors.engines.speech_recognition import Transcript, WhisperEngine
from tests.support.degraded import CONDITIONS, Sample, corpus, words

MISHEARD_WER = 0.3


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
    for threshold in (-0.6, -0.7, LOGPROB_BELOW, -0.9, -1.0, -1.2):
        asks = [
            t.avg_logprob < threshold or t.compression_ratio > COMPRESSION_ABOVE
            for t in transcripts
        ]
        by_condition = []
        for condition in CONDITIONS:
            picked = [a for a, s in zip(asks, samples, strict=True) if s.condition == condition]
            by_condition.append(f"{condition} {sum(picked) / len(picked):4.0%}")
        hits = sum(a and m for a, m in zip(asks, misheard, strict=True))
        precision = hits / max(sum(asks), 1)
        recall = hits / max(sum(misheard), 1)
        marker = "  <- in force" if threshold == LOGPROB_BELOW else ""
        print(
            f"logprob < {threshold:5.2f}: asks on "
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
    same = [
        unsure(a.avg_logprob, a.compression_ratio) == unsure(b.avg_logprob, b.compression_ratio)
        for a, b in zip(transcripts, loaded, strict=True)
    ]
    print(f"decisions the same with two busy threads: {sum(same)}/{len(same)}")
    for label, times in (("alone", alone_ms), ("two busy threads", loaded_ms)):
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(f"STT per turn, {label}: P50 {p50:.0f} ms, P95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
