"""The production voice's code (Sesame CSM via transformers) on a tiny random model.

Output quality is not judged (the weights are random); streaming, cancellation,
conversation context and loading from a local directory are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from actors.engines.csm_synthesis import CsmEngine
from tests.actors.tiny_csm import save_tiny_csm

SAMPLES_PER_FRAME = 1920  # 80 ms at 24 kHz


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Iterator[CsmEngine]:
    yield CsmEngine(str(model_dir), device="cpu", max_phrase_s=4.0, chunk_frames=4)


def test_audio_streams_out_in_chunks_while_generation_goes_on(engine: CsmEngine) -> None:
    started = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    for chunk in engine.stream("we open at noon every day"):
        arrivals.append((time.perf_counter() - started, len(chunk)))
    total = sum(n for _, n in arrivals)
    assert total == 50 * SAMPLES_PER_FRAME  # 4 s cap: the random model never ends by itself
    assert len(arrivals) >= 10 and arrivals[0][1] == 4 * SAMPLES_PER_FRAME
    assert arrivals[0][0] < arrivals[-1][0] / 3  # the first audio came long before the last


def test_cancelling_stops_generation_within_a_step(engine: CsmEngine) -> None:
    stop = threading.Event()
    chunks = []
    for chunk in engine.stream("hello there how can I help", should_stop=stop.is_set):
        chunks.append(chunk)
        stop.set()  # cancelled after the first chunk
    assert len(chunks) == 1  # nothing after: no frame generated past the next check
    assert threading.active_count() == len(
        [t for t in threading.enumerate() if t.name != "csm-generate"]
    )


def test_a_reader_that_walks_away_stops_generation(engine: CsmEngine) -> None:
    stream = engine.stream("the kitchen closes at ten")
    next(stream)
    stream.close()  # e.g. the Tts actor stopped mid-phrase
    assert not [t for t in threading.enumerate() if t.name == "csm-generate"]


def test_a_phrase_with_context_has_word_timings_inside_its_audio(engine: CsmEngine) -> None:
    first = engine.synthesize("we open at noon")
    second = engine.synthesize("the kitchen closes at ten", context=[first])
    assert second.rate == 24000 and len(second.samples) > 0
    assert [w.text for w in second.words] == ["the", "kitchen", "closes", "at", "ten"]
    assert second.words[-1].end_ms <= second.duration_ms + 1e-6
    assert np.isfinite(second.samples).all()
