"""Doubt: the agent asks again, rather than answer a turn it probably misheard (issue 12).

The corpus is both test voices over the phone, clear, in noise and mumbled
(``tests/support/degraded.py``), transcribed by the embedded STT; ``bench/doubt.py``
prints the full table. Here: the operating point holds (the clear are almost never
asked about, the degraded often, and asking is right when it happens), and the policy
asks instead of answering.
"""

from __future__ import annotations

import math

import jiwer
import numpy as np
import pytest

from actors.core.call_policy import CallPolicy, Generate, Record, Say, Transcribed
from actors.core.doubt import (
    CLARIFY,
    CLARIFY_NOISY,
    NOISY_BELOW_DB,
    noisy,
    speech_to_noise_db,
    unsure,
)
from actors.engines.speech_recognition import Transcript, WhisperEngine
from events.catalogue import TranscriptFinal, TurnNotAnswered
from tests.support.degraded import Sample, corpus, words


@pytest.fixture(scope="module")
def transcribed() -> list[tuple[Sample, Transcript]]:
    engine = WhisperEngine()
    return [(sample, engine.transcribe(sample.pcm16k)) for sample in corpus()]


def asked(pairs: list[tuple[Sample, Transcript]]) -> float:
    return sum(unsure(t) for _, t in pairs) / len(pairs)


def test_clear_turns_are_answered_and_degraded_ones_often_asked_about(
    transcribed: list[tuple[Sample, Transcript]],
) -> None:
    clear = [(s, t) for s, t in transcribed if s.condition == "clear"]
    mumbled = [(s, t) for s, t in transcribed if s.condition == "mumbled"]
    degraded = [(s, t) for s, t in transcribed if s.condition != "clear"]
    rates = {"clear": asked(clear), "mumbled": asked(mumbled), "degraded": asked(degraded)}
    print("asks:", {name: f"{rate:.0%}" for name, rate in rates.items()})
    assert asked(clear) <= 0.05  # measured 4 %: 1 of 28
    assert asked(mumbled) >= 0.80  # measured 89 %
    assert asked(degraded) >= 0.80  # measured 96 % (64 % on the recogniser's scores alone)
    # On a line not too noisy to judge, it asks when it misheard (a noisy line is asked
    # about whatever the recogniser wrote: there it was right about half the time).
    asks = [(s, t) for s, t in transcribed if unsure(t) and not noisy(t)]
    right = sum(jiwer.wer(words(s.text), words(t.text)) > 0.3 for s, t in asks)
    assert right / len(asks) >= 0.8  # measured 0.85


def test_the_line_is_judged_noisy_in_street_noise_and_never_when_clear() -> None:
    levels: dict[str, list[float]] = {}
    for sample in corpus():
        levels.setdefault(sample.condition, []).append(speech_to_noise_db(sample.pcm16k))
    assert min(levels["clear"]) > 3 * NOISY_BELOW_DB  # measured 38-46 dB
    assert max(levels["noisy 0 dB"]) < NOISY_BELOW_DB  # measured 8-11 dB
    assert max(levels["noisy -5 dB"]) < min(levels["noisy 0 dB"])  # louder noise, lower
    assert speech_to_noise_db(np.zeros(1000, dtype=np.int16)) == float("inf")  # too short


def test_an_unsure_transcript_is_asked_about_not_answered() -> None:
    policy = CallPolicy()
    policy.greet("Hello.")
    policy.reply_played(1, now=1.0)
    policy.caller_started(1000.0)
    guess = Transcribed(
        1,
        "Work a table to hide",
        0.0,
        1000,
        3000,
        3000,
        avg_logprob=-0.5,
        weakest_token_logprob=-2.4,
    )
    policy.transcribed(guess, lambda _: "")
    actions = policy.caller_stopped(3000.0, 3.0, lambda _: "")
    kinds = [a.kind if isinstance(a, Record) else type(a) for a in actions]
    assert TranscriptFinal in kinds and Generate not in kinds
    unclear = next(a for a in actions if isinstance(a, Record) and a.kind is TurnNotAnswered)
    assert unclear.fields == {"turn": 1, "reason": "unclear"}
    assert actions[-1] == Say(2, CLARIFY, "clarify")
    sure = Transcribed(2, "A table for two", 0.0, 5000, 6000, 6000, avg_logprob=-0.2)
    policy.reply_played(2, now=5.0)
    policy.caller_started(5000.0)
    policy.transcribed(sure, lambda _: "")
    assert isinstance(policy.caller_stopped(6000.0, 6.0, lambda _: "")[-1], Generate)


def scores(mean: float, compression: float = 1.2, weakest: float = -0.3) -> Transcript:
    return Transcript("", 1000.0, 0.0, mean, compression, weakest)


def test_a_looping_or_once_guessing_transcript_is_unsure_however_confident() -> None:
    assert not unsure(scores(-0.1)) and unsure(scores(-0.9))
    assert unsure(scores(-0.1, compression=3.0))
    assert unsure(scores(-0.3, weakest=-2.5))  # "work a table": one word guessed


def turn(
    policy: CallPolicy, number: int, noise_db: float = math.inf, weakest: float = 0.0
) -> list[object]:
    """The caller says turn ``number`` (after the agent's last reply played); the actions."""
    at = number * 5000.0
    policy.reply_played(number, now=at / 1000.0)
    policy.caller_started(at)
    said = Transcribed(
        number,
        "A table for two",
        0.0,
        at,
        at + 1000,
        at + 1000,
        weakest_token_logprob=weakest,
        speech_to_noise_db=noise_db,
    )
    policy.transcribed(said, lambda _: "")
    return list(policy.caller_stopped(at + 1000, at / 1000 + 1.0, lambda _: ""))


def test_a_noisy_line_is_asked_about_twice_at_most_then_answered() -> None:
    """Asked why (the noise), and not forever: the third unclear turn in a row is answered
    as heard; an answered turn starts the count again."""
    policy = CallPolicy()
    policy.greet("Hello.")
    assert turn(policy, 1, noise_db=8.0)[-1] == Say(2, CLARIFY_NOISY, "clarify")
    assert turn(policy, 2, weakest=-2.4)[-1] == Say(3, CLARIFY, "clarify")
    answered = turn(policy, 3, noise_db=8.0)
    assert isinstance(answered[-1], Generate) and TurnNotAnswered not in [
        a.kind for a in answered if isinstance(a, Record)
    ]
    final = next(a for a in answered if isinstance(a, Record) and a.kind is TranscriptFinal)
    assert final.fields["speech_to_noise_db"] == 8.0  # the replay shows why it asked
    policy.reply_played(4, now=17.0)
    assert turn(policy, 5, noise_db=8.0)[-1] == Say(5, CLARIFY_NOISY, "clarify")
