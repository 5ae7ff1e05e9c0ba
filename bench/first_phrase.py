"""The reply's first phrase: how soon can it sound, and what does cutting it cost the voice?

    python -m bench.first_phrase [--repeats 2]

The embedded model answers receptionist questions (the bundled agent's prompt and tools,
the gateway's temperature), its text deltas timed as they stream. For each way of
cutting the first phrase (``FirstPhrase``), per reply:

* **ready**: when the first phrase could sound, counted from the request: the time the
  delta that lets it be cut arrived, plus the embedded voice's time to synthesize it;
* **words** in the first phrase;
* **waits between phrases**: a short first phrase plays out sooner, and the next one may
  not be synthesized by then: the silence that leaves inside the reply (one Tts,
  phrases synthesized in turn as they are written).

Where a rule cuts inside the first sentence, the two pieces are synthesized as the Tts
does (each alone, margins trimmed, back to back) and compared with the sentence
synthesized whole, at the cut:

* **pause**: the silence the cut puts between the pieces, less the silence the whole
  sentence has there (its own pause at a comma);
* **pitch fall**: how far the voice's pitch falls over the last 150 ms of voice before the
  cut (semitones), less the fall the whole sentence has there. A piece synthesized alone
  ends like a sentence, falling; inside the sentence the voice carries on, level or rising;
* **DNSMOS** (``speechmos``, non-intrusive, 0-5) of the first sentence as the caller hears
  it (8 kHz mu-law), cut and whole, when that package and ``librosa`` are installed.

Percentiles are over replies; the sentence rule is the prosody's reference.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import soxr

from actors.core.audio_formats import Float32, mulaw_to_pcm16, phrase_to_mulaw
from actors.core.spoken_text import clean_phrase, speakable
from actors.core.tool_calls import ToolCallReader, tool_schemas
from actors.engines.language_model import (
    SENTENCES_ONLY,
    ChatStream,
    EmbeddedServer,
    FirstPhrase,
    phrases,
    warm_up,
)
from actors.engines.speech_synthesis import HibariEngine
from actors.llm import REPLY_TEMPERATURE, spoken_phrases
from bench.pipeline import QUESTIONS as PIPELINE_QUESTIONS
from gateway.agent_file import bundled_agent
from projections.context import Message, to_chat
from projections.metrics import percentile

# The pipeline's questions (less its goodbye, which asks nothing), and more of the kind.
QUESTIONS = [
    *PIPELINE_QUESTIONS[:-1],
    "Do you have vegetarian dishes?",
    "Are you open on Monday?",
    "Can I come with a group of ten people next Friday?",
    "Is the restaurant good for children?",
    "Where exactly are you?",
    "Do you take card payments?",
    "What is your most popular dish?",
    "Can I order food to take away?",
    "Is there a dress code?",
    "Do you have a table by the window?",
]

RULES = {
    "sentence only": SENTENCES_ONLY,
    "sentence past 12 chars or clause past 24 (before)": FirstPhrase(
        sentence_chars=12, clause_words=None, clause_chars=24
    ),
    "any sentence end, or clause past 24 chars": FirstPhrase(clause_words=None, clause_chars=24),
    "any sentence end, or clause of 3+ words (in force)": FirstPhrase(),
    "any sentence end, or clause of 2+ words": FirstPhrase(clause_words=2),
    "... or joining word past 4 words": FirstPhrase(break_words=4),
    "... or joining word past 3 words": FirstPhrase(break_words=3),
}
# Spoken with a comma where the cut has no punctuation, for the voice to carry on.
COMMA_HINTED = {"... past 4 words, spoken with a comma": FirstPhrase(break_words=4)}


@dataclass(frozen=True)
class TimedReply:
    question: str
    deltas: list[tuple[float, str]]  # (ms after the request, speakable text)


def ask(url: str, question: str) -> TimedReply | None:
    """One reply, as the Tts would get its text; None for a tool call with no words."""
    agent = bundled_agent()
    chat = to_chat(
        [Message("assistant", agent.greeting), Message("user", question)], agent.system_prompt
    )
    reader = ToolCallReader(tuple(str(s["function"]["name"]) for s in tool_schemas(agent)))
    stream = ChatStream(
        url, chat, tools=tool_schemas(agent), temperature=REPLY_TEMPERATURE, max_tokens=80
    )
    started = time.perf_counter()
    timed: list[tuple[float, str]] = []

    def generated(text: str) -> None:  # each piece of the reply's text, as it streams
        timed.append(((time.perf_counter() - started) * 1000.0, text))

    spoken = list(spoken_phrases(stream, reader, generated))
    return TimedReply(question, timed) if spoken else None


def timed_phrases(reply: TimedReply, rule: FirstPhrase) -> list[tuple[str, float]]:
    """The reply's phrases under ``rule``, each with when it could be cut (ms after the
    request; the last one at the stream's end)."""
    arrived = [0.0]

    def deltas() -> Iterator[str]:
        for at_ms, text in reply.deltas:
            arrived[0] = at_ms
            yield text

    timed = []
    for raw in phrases(speakable(deltas()), first=rule):
        phrase = clean_phrase(raw)
        if phrase:
            timed.append((phrase, arrived[0]))
    return timed


def first_phrase(reply: TimedReply, rule: FirstPhrase) -> tuple[str, float]:
    """The rule's first phrase and when it could be cut (ms after the request)."""
    return next(iter(timed_phrases(reply, rule)), ("", 0.0))


def waits_between_phrases(
    timed: list[tuple[str, float]], synthesized: Callable[[str], tuple[float, float]]
) -> float:
    """Silence the caller hears between the reply's phrases beyond the voice's own pauses:
    one Tts synthesizes them in turn, each once written, and a phrase not ready when the
    one before has played leaves a gap. ``synthesized``: a phrase's (synthesis ms, audio
    ms)."""
    synthesis_done = playing_until = 0.0
    gaps = 0.0
    for index, (phrase, written_ms) in enumerate(timed):
        synthesis_ms, audio_ms = synthesized(phrase)
        synthesis_done = max(synthesis_done, written_ms) + synthesis_ms
        starts = synthesis_done if index == 0 else max(playing_until, synthesis_done)
        if index:
            gaps += starts - playing_until
        playing_until = starts + audio_ms
    return gaps


def pieces_of_first_sentence(reply: TimedReply, rule: FirstPhrase, sentence: str) -> list[str]:
    """The rule's phrases that make up the reply's first ``sentence``."""
    text = "".join(text for _, text in reply.deltas)
    pieces: list[str] = []
    for raw in phrases(speakable(iter([text])), first=rule):
        pieces.append(clean_phrase(raw))
        if len(" ".join(pieces)) >= len(sentence):
            break
    return pieces


# -- the voice at the cut ------------------------------------------------------------


def frame_energy(audio: Float32, rate: int, hop_ms: float = 10.0) -> np.ndarray:
    hop = int(rate * hop_ms / 1000)
    frames = len(audio) // hop
    return np.asarray(
        np.sqrt(np.mean(np.square(audio[: frames * hop].reshape(frames, hop)), axis=1))
    )


def loud_frames(audio: Float32, rate: int, floor: float) -> np.ndarray:
    """10 ms frames louder than ``floor``: one floor for the pieces and the whole alike,
    or each clip's own quiet would be measured against its own loudest sound."""
    return np.asarray(frame_energy(audio, rate) > floor)


def pitch_track(audio: Float32, rate: int, floor: float, hop_ms: float = 10.0) -> np.ndarray:
    """F0 (Hz) every ``hop_ms``, NaN where unvoiced: autocorrelation over 40 ms windows."""
    hop, window = int(rate * hop_ms / 1000), int(rate * 0.040)
    lo, hi = int(rate / 400), int(rate / 70)
    loud = loud_frames(audio, rate, floor)
    track = np.full(len(loud), np.nan)
    for i in range(len(loud)):
        frame = audio[i * hop : i * hop + window]
        if len(frame) < window or not loud[i]:
            continue
        frame = frame - frame.mean()
        spectrum = np.fft.rfft(frame, 2 * window)
        corr = np.fft.irfft(spectrum * np.conj(spectrum))[:window]
        if corr[0] <= 0:
            continue
        lags = corr[lo:hi]
        # The shortest lag nearly as strong as the best: the best alone halves F0 at times.
        strong = np.nonzero(lags >= 0.85 * lags.max())[0]
        lag = lo + int(strong[0]) if len(strong) else lo + int(np.argmax(lags))
        while lag + 1 < hi and corr[lag + 1] > corr[lag]:  # up to that peak's top
            lag += 1
        if corr[lag] / corr[0] > 0.5:
            track[i] = rate / lag
    return track


def fall_semitones(track: np.ndarray, end_frame: int, span_frames: int = 15) -> float | None:
    """Pitch at the last voiced frames before ``end_frame`` against the span before them."""
    window = range(max(end_frame - 40, 0), min(end_frame, len(track)))
    voiced = [i for i in window if not np.isnan(track[i])][-span_frames:]
    if len(voiced) < 6:
        return None
    third = len(voiced) // 3
    start = float(np.median(track[voiced[:third]]))
    end = float(np.median(track[voiced[-third:]]))
    return 12.0 * float(np.log2(end / start))


def quiet_run_ms(loud: np.ndarray, around: int, reach: int = 30) -> float:
    """The longest run of quiet 10 ms frames within ``reach`` frames of ``around``."""
    best = run = 0
    for i in range(max(around - reach, 0), min(around + reach, len(loud))):
        run = run + 1 if not loud[i] else 0
        best = max(best, run)
    return best * 10.0


@dataclass(frozen=True)
class AtTheCut:
    pause_added_ms: float
    fall_added_st: float | None
    mos_cut: float | None
    mos_whole: float | None


def at_the_cut(
    voice: HibariEngine, pieces: list[str], sentence: str, mos: Mos, *, comma: bool = False
) -> AtTheCut:
    hinted = pieces[0] + "," if comma and pieces[0][-1] not in ".,;:!?" else pieces[0]
    first, rest = voice.synthesize(hinted), [voice.synthesize(p) for p in pieces[1:]]
    whole = voice.synthesize(sentence)
    rate = whole.rate
    floor = max(float(frame_energy(whole.samples, rate).max()) * 0.05, 1e-4)
    loud_first = loud_frames(first.samples, rate, floor)
    loud_next = loud_frames(rest[0].samples, rate, floor)
    last_loud = int(np.nonzero(loud_first)[0][-1]) + 1
    pause_cut = (len(loud_first) - last_loud + int(np.argmax(loud_next))) * 10.0
    # The same place in the whole sentence: as long after its first sound as the first
    # piece's words last (exact where the cut is a sentence end: the voice synthesizes
    # sentences one by one, so the whole begins with that very piece).
    loud_whole = loud_frames(whole.samples, rate, floor)
    boundary = int(np.argmax(loud_whole)) + last_loud - int(np.argmax(loud_first))
    pause_whole = quiet_run_ms(loud_whole, boundary)
    whole_fall = fall_semitones(pitch_track(whole.samples, rate, floor), boundary)
    cut_fall = fall_semitones(pitch_track(first.samples, rate, floor), last_loud)
    fall = None if whole_fall is None or cut_fall is None else cut_fall - whole_fall
    together = np.concatenate([first.samples, *(p.samples for p in rest)])
    return AtTheCut(pause_cut - pause_whole, fall, mos(together, rate), mos(whole.samples, rate))


class Mos:
    """DNSMOS overall of audio as the caller hears it, or None without ``speechmos``."""

    def __init__(self) -> None:
        try:
            self._dnsmos: ModuleType | None = importlib.import_module("speechmos.dnsmos")
        except ImportError:
            self._dnsmos = None
            print("(no DNSMOS: pip install speechmos librosa to score the voice)")

    def __call__(self, samples: Float32, rate: int) -> float | None:
        if self._dnsmos is None:
            return None
        phone = mulaw_to_pcm16(phrase_to_mulaw(samples, rate)).astype(np.float32) / 32768.0
        wide = soxr.resample(phone, 8000, 16000).astype(np.float32)
        return float(self._dnsmos.run(wide, 16000)["ovrl_mos"])


def show(values: list[float], unit: str, qs: tuple[int, ...] = (50, 95, 99)) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q) or 0.0:,.0f}" for q in qs) + f" {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="replies per question")
    args = parser.parse_args()
    voice, mos = HibariEngine(), Mos()
    server = EmbeddedServer()
    server.start()
    try:
        agent = bundled_agent()
        warm_up(server.url, agent.system_prompt, tools=tool_schemas(agent))
        replies = [
            reply
            for _ in range(args.repeats)
            for q in QUESTIONS
            if (reply := ask(server.url, q)) is not None
        ]
    finally:
        server.stop()
    print(f"{len(replies)} replies with words, of {args.repeats * len(QUESTIONS)} asked\n")
    done: dict[str, tuple[float, float]] = {}

    def synthesized(text: str) -> tuple[float, float]:
        """The voice's time to synthesize ``text`` and its audio's length (ms)."""
        if text not in done:
            started = time.perf_counter()
            audio = voice.synthesize(text)
            done[text] = ((time.perf_counter() - started) * 1000.0, audio.duration_ms)
        return done[text]

    print(
        "| first phrase cut | ready after the request P50 / P95 / P99 | its words P50 / P95 "
        "| replies with a wait between phrases, its P95 "
        "| first sentences cut | pause added P50 / P95 | pitch change added P50 / P5 "
        "| DNSMOS cut / whole |"
    )
    print("|---|---|---|---|---|---|---|---|")
    first_sentences = [first_phrase(reply, SENTENCES_ONLY)[0] for reply in replies]
    for name, rule in (RULES | COMMA_HINTED).items():
        ready, words, pauses, falls, mos_cut, mos_whole = [], [], [], [], [], []
        waits = []
        for reply, sentence in zip(replies, first_sentences, strict=True):
            timed = timed_phrases(reply, rule)
            phrase, written_ms = timed[0]
            ready.append(written_ms + synthesized(phrase)[0])
            words.append(float(len(phrase.split())))
            waits.append(waits_between_phrases(timed, synthesized))
            if rule is SENTENCES_ONLY:
                continue
            pieces = pieces_of_first_sentence(reply, rule, sentence)
            if len(pieces) < 2:
                continue
            cut = at_the_cut(voice, pieces, sentence, mos, comma=name in COMMA_HINTED)
            pauses.append(cut.pause_added_ms)
            if cut.fall_added_st is not None:
                falls.append(cut.fall_added_st)
            if cut.mos_cut is not None and cut.mos_whole is not None:
                mos_cut.append(cut.mos_cut)
                mos_whole.append(cut.mos_whole)
        fall = f"{percentile(falls, 50):+.1f} / {percentile(falls, 5):+.1f} st" if falls else "-"
        score = f"{np.mean(mos_cut):.2f} / {np.mean(mos_whole):.2f}" if mos_cut else "-"
        print(
            f"| {name} | {show(ready, 'ms')} | {show(words, 'words', (50, 95))} "
            f"| {sum(w > 0 for w in waits)} of {len(waits)}, {show(waits, 'ms', (95,))} "
            f"| {len(pauses)} of "
            f"{len(replies)} | {show(pauses, 'ms', (50, 95))} "
            f"| {fall} | {score} |"
        )
    print("\nFirst phrases, by rule (first 8 replies):")
    for reply in replies[:8]:
        print(f"  {reply.question}")
        for name, rule in RULES.items():
            print(f"    {name:48} {first_phrase(reply, rule)[0]!r}")


if __name__ == "__main__":
    main()
