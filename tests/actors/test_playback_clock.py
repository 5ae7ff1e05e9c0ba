"""The playback clock's model, with time passed in (no sockets, no sleeping)."""

from __future__ import annotations

import pytest

from actors.core.playback_clock import PlaybackClock


def send(clock: PlaybackClock, at: float, frames: int) -> None:
    for _ in range(frames):
        clock.on_frame_sent(at)


def test_pacing_never_exceeds_the_lead() -> None:
    clock = PlaybackClock(lead_ms=200)
    t = 10.0
    sent = 0
    while sent < 200:  # 4 s of audio
        due = clock.next_send_at(t)
        t = max(t, due)
        clock.on_frame_sent(t)
        sent += 1
        assert clock.buffered_ms(t) <= 200 + 1e-6
    assert clock.sent_ms == 4000


def test_position_runs_in_real_time_and_stalls_on_underrun() -> None:
    clock = PlaybackClock()
    send(clock, 1.0, 10)  # 200 ms at t=1.0
    assert clock.position_at(1.1) == pytest.approx(100)
    assert clock.position_at(1.5) == pytest.approx(200)  # ran dry: stalls
    send(clock, 2.0, 5)  # new run later
    assert clock.position_at(2.05) == pytest.approx(250)


def test_clear_estimate_is_bounded_by_proven_play_and_what_was_sent() -> None:
    clock = PlaybackClock()
    send(clock, 0.0, 10)
    clock.on_mark_sent("w1", 1)  # at 200 ms
    send(clock, 0.0, 10)  # 400 ms sent, all queued at t=0
    assert clock.on_mark_echo("w1", 0.25).kind == "played"
    estimate = clock.on_clear(0.05)  # the model says 50 ms, but an echo proved 200 ms
    assert estimate.played_ms == pytest.approx(200)
    assert 200 <= estimate.lower_ms <= estimate.played_ms <= estimate.upper_ms <= 400
    assert clock.refine_clear(None) is not None


def test_echoes_after_a_clear_for_unplayed_marks_are_flushed() -> None:
    clock = PlaybackClock()
    send(clock, 0.0, 10)
    clock.on_mark_sent("a", 1)  # at 200 ms
    send(clock, 0.0, 10)
    clock.on_mark_sent("b", 1)  # at 400 ms
    clock.on_clear(0.1)  # playback at ~100 ms: both marks pending
    assert clock.on_mark_echo("a", 0.11).kind == "flushed"
    assert clock.on_mark_echo("b", 0.11).kind == "flushed"
    assert clock.on_mark_echo("never-sent", 0.12).kind == "unknown"


def test_marks_sent_after_a_clear_play_normally() -> None:
    """A clear flushes only what was sent before it: the next reply's marks are played.
    (A bug found by a two-reply call: every later mark was counted as flushed.)"""
    clock = PlaybackClock()
    send(clock, 0.0, 10)
    clock.on_mark_sent("old", 1)  # at 200 ms
    clock.on_clear(0.1)
    clock.refine_clear(0.11)
    send(clock, 1.0, 10)  # the next reply, a second later
    clock.on_mark_sent("new", 2)  # at 400 ms
    assert clock.on_mark_echo("old", 0.11).kind == "flushed"
    assert clock.on_mark_echo("new", 1.25).kind == "played"


def test_probe_marks_measure_the_round_trip() -> None:
    clock = PlaybackClock()
    assert clock.probe_due(0.0)
    name = clock.on_probe_sent(0.0)
    assert clock.on_mark_echo(name, 0.12).kind == "probe"
    assert clock.rtt_s() == pytest.approx(0.12)
