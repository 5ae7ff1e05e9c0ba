"""End of turn: which rule tells a finished caller from one who only paused, and at what cost?

    python -m bench.end_of_turn

On the labelled corpus (``tests/support/turn_corpus.py``: complete turns, and the words
before a mid-turn pause of 250-1,200 ms; both voices, clear and in street noise at
10 dB, over 8 kHz mu-law), each candidate decides at the pause how long a silence ends
the turn. A *false cut-off*: an incomplete turn whose pause reaches that silence (the
agent answers half a sentence). The *delay*: the silence a complete turn waits, past
the 300 ms the VAD's own hangover already counts as speech end. Candidates:

* silence alone, at several waits (today's rule: 300 ms);
* the word rule (``actors/core/end_of_turn.py``) over the embedded STT's transcript of
  the words before the pause: unfinished -> the long wait, else the short one;
* smart-turn v3.2 (pipecat's bundled ONNX, audio only; its 8 kHz accuracy is reported
  to fall from 98 % to 60 %): "incomplete" under a probability threshold -> the long
  wait. The model comes from the ``pipecat-ai`` wheel, fetched once with
  ``pip download --no-deps`` into ``var/models`` (skipped if that cannot be done);
* both: the long wait if either says unfinished;
* the language model (the embedded Qwen2.5-0.5B, the way LiveKit's turn detector reads
  a transcript): the probability that the caller's message ends here, i.e. that the
  next token after the words is the chat template's end of message, over the text
  with and without the STT's final punctuation (Whisper puts a full stop after half a
  sentence); "incomplete" under a threshold -> the long wait.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from actors.core.end_of_turn import UNFINISHED_WAIT_MS, sounds_unfinished
from actors.engines.language_model import EmbeddedServer
from actors.engines.speech_recognition import WhisperEngine
from gateway.agent_file import bundled_agent
from tests.support.turn_corpus import Turn, turns

MODELS = Path("var/models/smart_turn")
SMART_TURN_FILES = (
    "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
    "pipecat/audio/turn/smart_turn/_whisper_features.py",
)


def smart_turn() -> Callable[[np.ndarray], float] | None:
    """smart-turn v3.2's probability that a turn (16 kHz int16) is complete, or None."""
    onnx = MODELS / "smart-turn-v3.2-cpu.onnx"
    features_py = MODELS / "_whisper_features.py"
    if not onnx.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "pipecat-ai==1.14.0",
             "-d", str(MODELS)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        wheels = list(MODELS.glob("pipecat_ai-*.whl"))
        if fetched.returncode != 0 or not wheels:
            print(
                f"smart-turn skipped: the pipecat-ai wheel did not come ({fetched.stderr[-200:]})"
            )
            return None
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in SMART_TURN_FILES:
                (MODELS / Path(name).name).write_bytes(wheel.read(name))
        wheels[0].unlink()
    import onnxruntime as ort

    spec = importlib.util.spec_from_file_location("smart_turn_features", features_py)
    assert spec is not None and spec.loader is not None
    features: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), sess_options=options)

    def complete_probability(pcm16k: np.ndarray) -> float:
        audio = pcm16k.astype(np.float32) / 32768.0
        audio = audio[-8 * 16000 :]
        audio = np.pad(audio, (8 * 16000 - len(audio), 0))
        log_mel = features.compute_whisper_log_mel_features(audio, do_normalize=True)
        out = session.run(None, {"input_features": np.expand_dims(log_mel, 0)})
        return float(np.asarray(out[0]).ravel()[0])

    return complete_probability


END_OF_MESSAGE = "<|im_end|>"  # Qwen's chat template


def message_ends(url: str, system_prompt: str) -> Callable[[str], float]:
    """The embedded model's probability that a caller message ends after ``text``."""

    def probability(text: str) -> float:
        prompt = (
            f"<|im_start|>system\n{system_prompt}{END_OF_MESSAGE}\n<|im_start|>user\n{text.strip()}"
        )
        body = {"prompt": prompt, "max_tokens": 1, "logprobs": 20, "temperature": 0.0}
        request = urllib.request.Request(
            url.rstrip("/") + "/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            choice = json.loads(response.read())["choices"][0]
        top = (choice.get("logprobs") or {}).get("top_logprobs") or [{}]
        # llama-cpp-python detokenizes the special token to "" (no other token is empty)
        return sum(math.exp(lp) for token, lp in top[0].items() if token in ("", END_OF_MESSAGE))

    return probability


def judge(corpus: list[Turn], unfinished: list[bool], short_ms: float, long_ms: float) -> str:
    cut = sum(
        t.pause_ms >= (long_ms if u else short_ms)
        for t, u in zip(corpus, unfinished, strict=True)
        if not t.complete
    )
    incomplete = sum(not t.complete for t in corpus)
    delays = [
        long_ms if u else short_ms for t, u in zip(corpus, unfinished, strict=True) if t.complete
    ]
    slowed = sum(u for t, u in zip(corpus, unfinished, strict=True) if t.complete)
    complete = len(delays)
    return (
        f"false cut-offs {cut}/{incomplete} ({cut / incomplete:4.0%}); delay P50 "
        f"{statistics.median(delays):5.0f} ms, mean {statistics.mean(delays):5.0f} ms "
        f"({slowed}/{complete} complete turns held long)"
    )


def main() -> None:
    corpus = list(turns())
    engine = WhisperEngine()
    started = time.perf_counter()
    texts = [engine.transcribe(t.pcm16k).text for t in corpus]
    stt_ms = (time.perf_counter() - started) * 1000.0 / len(corpus)
    complete = sum(t.complete for t in corpus)
    print(f"{len(corpus)} turns: {complete} complete, {len(corpus) - complete} incomplete")
    print(f"STT of the words before the pause: {stt_ms:.0f} ms per turn (mean)")
    print("\nsilence alone:")
    for wait in (200.0, 300.0, 500.0, 700.0, 1000.0, 1300.0):
        print(f"  wait {wait:5.0f} ms: " + judge(corpus, [False] * len(corpus), wait, wait))
    words = [sounds_unfinished(text) for text in texts]
    right = sum(w == (not t.complete) for w, t in zip(words, corpus, strict=True))
    print(f"\nword rule (right on {right}/{len(corpus)} turns):")
    for short, long in (
        (200.0, 1000.0),
        (300.0, 1000.0),
        (300.0, UNFINISHED_WAIT_MS),
        (500.0, UNFINISHED_WAIT_MS),
    ):
        marker = "  <- in force" if (short, long) == (300.0, UNFINISHED_WAIT_MS) else ""
        print(f"  {short:4.0f} / {long:5.0f} ms: " + judge(corpus, words, short, long) + marker)
    for turn, text, unfinished in zip(corpus, texts, words, strict=True):
        if unfinished == turn.complete:
            label = "complete" if turn.complete else "incomplete"
            print(f"    wrong on a {label} turn ({turn.voice}, {turn.condition}): {text!r}")
    language_model(corpus, texts, words)
    probability = smart_turn()
    if probability is None:
        return
    started = time.perf_counter()
    scores = [probability(t.pcm16k) for t in corpus]
    model_ms = (time.perf_counter() - started) * 1000.0 / len(corpus)
    print(f"\nsmart-turn v3.2, 8 kHz audio upsampled ({model_ms:.0f} ms per turn, one thread):")
    for threshold in (0.3, 0.5, 0.7, 0.9):
        says = [s < threshold for s in scores]
        right = sum(u == (not t.complete) for u, t in zip(says, corpus, strict=True))
        for short, long in ((300.0, UNFINISHED_WAIT_MS),):
            print(
                f"  complete above {threshold:.1f} (right on {right}/{len(corpus)}), "
                f"{short:.0f} / {long:.0f} ms: " + judge(corpus, says, short, long)
            )
    print("\nboth (the long wait if either says unfinished):")
    for threshold in (0.3, 0.5):
        either = [w or s < threshold for w, s in zip(words, scores, strict=True)]
        print(
            f"  words + smart-turn above {threshold:.1f}, 300 / {UNFINISHED_WAIT_MS:.0f} ms: "
            + judge(corpus, either, 300.0, UNFINISHED_WAIT_MS)
        )


def language_model(corpus: list[Turn], texts: list[str], words: list[bool]) -> None:
    server = EmbeddedServer()
    server.start()
    try:
        ends = message_ends(server.url, bundled_agent().system_prompt)
        for name, shown in (
            ("as transcribed", texts),
            ("final punctuation removed", [re.sub(r"[.?!,]+$", "", t.strip()) for t in texts]),
        ):
            started = time.perf_counter()
            scores = [ends(text) for text in shown]
            each_ms = (time.perf_counter() - started) * 1000.0 / len(corpus)
            print(f"\nlanguage model, {name} ({each_ms:.0f} ms per turn):")
            for threshold in (0.005, 0.01, 0.02, 0.05, 0.1):
                says = [score < threshold for score in scores]
                right = sum(u == (not t.complete) for u, t in zip(says, corpus, strict=True))
                print(
                    f"  ends above {threshold:.3f} (right on {right}/{len(corpus)}), 300 / "
                    f"{UNFINISHED_WAIT_MS:.0f} ms: "
                    + judge(corpus, says, 300.0, UNFINISHED_WAIT_MS)
                )
                either = [w or u for w, u in zip(words, says, strict=True)]
                print("    with the word rule: " + judge(corpus, either, 300.0, UNFINISHED_WAIT_MS))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
