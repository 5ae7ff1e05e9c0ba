"""The dead-air watch and the retry rule, without threads or clocks of their own."""

from __future__ import annotations

from actors.core.liveness import DeadAirWatch, GiveUp, Hold, retry_allowed


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


def test_one_retry_only_before_anything_was_spoken_and_while_it_can_help() -> None:
    assert retry_allowed(attempt=1, phrases_sent=0, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=2, phrases_sent=0, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=1, phrases_sent=1, elapsed_s=0.5, bound_s=2.5)
    assert not retry_allowed(attempt=1, phrases_sent=0, elapsed_s=2.0, bound_s=2.5)
