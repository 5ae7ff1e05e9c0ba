"""The supervisor's pure turn-taking core."""

from __future__ import annotations

from actors.core.turn_taking import BargeIn, TranscriptGate, TurnTaking, interruption_kind


def test_caller_speech_over_a_reply_is_a_barge_in_once() -> None:
    turns = TurnTaking()
    reply = turns.start_reply()
    assert turns.caller_started(1200.0) == BargeIn(reply, 1200.0)
    assert turns.agent_reply is None
    assert turns.caller_started(1300.0) is None  # the floor is already the caller's


def test_speech_after_the_reply_played_is_a_new_turn_not_a_barge_in() -> None:
    turns = TurnTaking()
    first = turns.start_reply()
    turns.reply_played(first)
    assert turns.caller_started(5000.0) is None and turns.caller_speaking
    turns.caller_stopped()
    assert not turns.caller_speaking and turns.start_reply() == first + 1


def test_a_late_played_report_for_an_old_reply_does_not_free_the_floor() -> None:
    turns = TurnTaking()
    old = turns.start_reply()
    turns.caller_started(10.0)
    new = turns.start_reply()
    turns.reply_played(old)
    assert turns.agent_reply == new


def test_a_transcript_started_at_a_pause_answers_the_turn_that_ends_there() -> None:
    gate: TranscriptGate[str] = TranscriptGate()
    assert gate.transcribed(1500.0, "book a table") is None  # the turn has not ended yet
    assert gate.turn_ended(1500.0) == "book a table"


def test_the_end_of_turn_waits_for_its_transcript() -> None:
    gate: TranscriptGate[str] = TranscriptGate()
    assert gate.turn_ended(1500.0) is None
    assert gate.transcribed(1500.0, "book a table") == "book a table"
    assert gate.transcribed(1500.0, "again") is None  # answered once


def test_a_pause_the_caller_talked_through_is_not_the_turn() -> None:
    gate: TranscriptGate[str] = TranscriptGate()
    gate.transcribed(900.0, "book a")  # speculative, at a pause mid-sentence
    assert gate.turn_ended(1500.0) is None  # the turn ended later: that transcript is short
    assert gate.transcribed(1500.0, "book a table for two") == "book a table for two"
    assert gate.turn_ended(2600.0) is None  # and it is not kept for the next turn


def test_a_cut_in_is_remembered_until_the_callers_turn_is_over() -> None:
    turns = TurnTaking()
    reply = turns.start_reply()
    turns.caller_started(800.0)
    assert turns.take_interrupted() == reply and turns.take_interrupted() is None


def test_what_follows_a_cut_in() -> None:
    for said in ("Okay.", "Yeah.", "Mm-hmm.", "Right, right", "uh huh", "", "  "):
        assert interruption_kind(said, 0.1) == "resume", said
    assert interruption_kind("Could I book a table?", 0.95) == "resume"  # not speech
    for said in ("Wait.", "Sorry, one question.", "Hold on, hold on.", "Excuse me, um"):
        assert interruption_kind(said, 0.1) == "acknowledge", said
    for said in ("Wait, do you have parking?", "Okay, book it for eight.", "No.", "Stop it now"):
        assert interruption_kind(said, 0.1) == "answer", said
