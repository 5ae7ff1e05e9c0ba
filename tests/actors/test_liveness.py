"""The dead-air watch and the retry rule, without threads or clocks of their own."""

from __future__ import annotations

import pytest

from actors.core.liveness import (
    DeadAirWatch,
    Filler,
    GiveUp,
    Hold,
    Quiet,
    QuietWatch,
    retry_allowed,
)


def test_a_turn_left_unanswered_gets_a_holding_line_then_the_fallback() -> None:
    watch = DeadAirWatch(bound_s=2.5, give_up_s=5.0, hold_lead_s=0.25)
    watch.turn_ended(100.0)
    assert watch.due_at() == 102.25  # queued a little early, to be heard by the bound
    assert watch.check(102.2) is None
    watch.reply_requested(7)
    assert watch.check(102.25) == Hold(2250.0, "reply", 7)
    assert watch.check(103.0) is None  # once per turn
    assert watch.due_at() == 107.25
    assert watch.check(107.25) == GiveUp(7250.0, "reply", 7)
    assert watch.due_at() is None


def test_after_a_filler_the_holding_line_follows_its_words_not_the_bound() -> None:
    watch = DeadAirWatch(
        bound_s=2.5, hold_lead_s=0.2, filler_s=0.5, filler_speech_s=0.6, quiet_after_filler_s=0.3
    )
    watch.turn_ended(100.0)
    watch.reply_requested(7)
    assert watch.due_at() == 100.5 and watch.check(100.5) == Filler(500.0, "reply", 7)
    # the filler's words end at 101.1; a pause between sentences, then the holding line
    assert watch.due_at() == pytest.approx(101.2) and watch.check(101.15) is None
    hold = watch.check(101.21)
    assert isinstance(hold, Hold) and hold.reply_id == 7 and hold.waited_ms == pytest.approx(1210.0)
    assert watch.due_at() == pytest.approx(107.3)  # the fallback keeps its distance from the bound


def test_a_long_filler_never_puts_the_holding_line_past_the_bound() -> None:
    watch = DeadAirWatch(bound_s=2.5, hold_lead_s=0.2, filler_s=1.5, filler_speech_s=2.0)
    watch.turn_ended(0.0)
    assert isinstance(watch.check(1.5), Filler)
    assert watch.due_at() == 2.3


def test_waiting_for_the_transcript_is_told_apart() -> None:
    watch = DeadAirWatch(bound_s=2.5)
    watch.turn_ended(0.0)
    assert watch.check(2.5) == Hold(2500.0, "transcript")


def test_audio_or_a_new_caller_turn_settles_the_watch() -> None:
    watch = DeadAirWatch(bound_s=2.5)
    watch.turn_ended(0.0)
    watch.settled()
    assert watch.check(10.0) is None and watch.due_at() is None
    watch.turn_ended(20.0)  # the next turn re-arms it
    assert isinstance(watch.check(22.3), Hold)


def test_a_reply_requested_with_no_turn_pending_is_not_watched() -> None:
    watch = DeadAirWatch()
    watch.reply_requested(3)  # a greeting: nobody is waiting for it
    assert watch.due_at() is None


def test_an_answer_gone_quiet_gets_the_holding_line_then_the_fallback() -> None:
    watch = QuietWatch(quiet_s=1.2, give_up_s=5.0)
    watch.update(Quiet(7, since=10.0, answer_since=10.0))
    assert watch.due_at() == 11.2 and watch.check(11.1) is None
    assert watch.check(11.2) == Hold(pytest.approx(1200.0), "more", 7)  # type: ignore[arg-type]
    assert watch.check(11.3) is None  # once per quiet
    watch.update(Quiet(7, since=12.4, answer_since=10.0))  # the holding line went out
    assert watch.due_at() == 17.4  # the fallback: give_up_s after the holding line
    verdict = watch.check(17.4)
    assert isinstance(verdict, GiveUp) and verdict.reply_id == 7
    assert watch.due_at() is None


def test_the_answer_speaking_again_starts_a_new_quiet() -> None:
    watch = QuietWatch(quiet_s=1.2, give_up_s=5.0)
    watch.update(Quiet(7, since=10.0, answer_since=10.0))
    assert isinstance(watch.check(11.2), Hold)
    watch.update(Quiet(7, since=13.0, answer_since=13.0))  # its next phrase played
    assert watch.due_at() == 14.2  # a holding line again, not the fallback
    assert isinstance(watch.check(14.2), Hold)
    watch.update(None)  # the answer is done (or cut): nothing is owed
    assert watch.due_at() is None and watch.check(30.0) is None


def test_while_a_tool_runs_the_holding_line_comes_again_instead_of_the_fallback() -> None:
    # The tool's own timeout ends that wait (with an apology): the model is not given up on.
    watch = QuietWatch(quiet_s=1.2, give_up_s=5.0)
    watch.update(Quiet(7, since=10.0, answer_since=10.0, tool_running=True))
    assert watch.check(11.2) == Hold(pytest.approx(1200.0), "tool", 7)  # type: ignore[arg-type]
    watch.update(Quiet(7, since=12.4, answer_since=10.0, tool_running=True))
    assert watch.check(17.4) == Hold(pytest.approx(7400.0), "tool", 7)  # type: ignore[arg-type]


def test_one_retry_only_before_anything_was_spoken_and_while_it_can_help() -> None:
    assert retry_allowed(attempt=1, phrases_sent=0, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=2, phrases_sent=0, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=1, phrases_sent=1, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=1, phrases_sent=0, elapsed_s=2.0, bound_s=2.5)
