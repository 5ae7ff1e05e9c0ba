"""The word rule for the end of a turn (``actors/core/end_of_turn.py``), on transcripts as
the embedded STT writes the words before a pause; ``bench/end_of_turn.py`` measures it
on the labelled corpus."""

from __future__ import annotations

import pytest

from actors.core.call_policy import CallPolicy, Record, Speculate, Transcribed, WaitLonger
from actors.core.end_of_turn import sounds_unfinished


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for",
        "We'll be arriving around",
        "Actually, um,",
        "I need to change my reservation to...",
        "So the thing is,",
        "My name is",
    ],
)
def test_words_that_stop_where_a_request_cannot_end_sound_unfinished(text: str) -> None:
    assert sounds_unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for two people tonight.",
        "My name is Ada Lovelace.",
        "Can I bring my dog?",
        "Thanks, that's all.",
        "",
        "Is there parking?",  # a sentence that could end here: the rule cannot tell
    ],
)
def test_a_finished_request_does_not(text: str) -> None:
    assert not sounds_unfinished(text)


def pause(text: str, speech_end_ms: float = 2500.0) -> Transcribed:
    return Transcribed(1, text, 0.0, 1000.0, speech_end_ms, speech_end_ms, tentative=True)


def test_an_unfinished_pause_holds_the_turn_open_and_begins_no_reply() -> None:
    policy = CallPolicy()
    policy.greet("Hello.")
    policy.reply_played(1, now=1.0)
    policy.caller_started(1000.0)
    held = policy.transcribed(pause("I'd like to book a table for"), lambda _: "")
    assert WaitLonger() in held and not any(isinstance(a, Speculate) for a in held)
    finished = policy.transcribed(pause("A table for two, please."), lambda _: "")
    assert WaitLonger() not in finished and any(isinstance(a, Speculate) for a in finished)


def test_a_pause_the_caller_has_already_spoken_past_holds_nothing() -> None:
    policy = CallPolicy()
    policy.greet("Hello.")
    policy.reply_played(1, now=1.0)
    policy.caller_started(1000.0)
    policy.caller_resumed(2700.0)
    late = policy.transcribed(pause("I'd like to book a table for"), lambda _: "")
    assert [type(a) for a in late] == [Record]  # the partial transcript, recorded; no more
