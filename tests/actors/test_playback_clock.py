"""The playback clock's model, with time passed in (no sockets, no sleeping)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.core.playback_clock import ClearEstimate, PlaybackClock


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


# --- Twilio's packet clock -------------------------------------------------------------------

PACKET_S = 0.020


@dataclass
class PacketPlayer:
    """Twilio's playout, pure: whole 20 ms packets on a clock ticking from ``phase_s``
    (its own time = ours + ``delay_s``, each way). A run starts at the first tick after its
    audio arrives; a mark echoes as the packet before it ends; a clear keeps the packet
    playing. Here frames come in runs, each sent at once (the clock's schedule is what
    matters, not the pacing)."""

    phase_s: float
    delay_s: float
    runs: list[tuple[float, float, float]] = field(default_factory=list)  # (start, from, to)

    def tick_after(self, t: float) -> float:
        return self.phase_s + math.ceil((t - self.phase_s) / PACKET_S - 1e-9) * PACKET_S

    def send_run(
        self, clock: PlaybackClock, at: float, frames: int, marks_every: int
    ) -> list[tuple[float, str]]:
        """Send a run at our time ``at``; returns its marks' echoes as (time back, name)."""
        start_ms = clock.sent_ms
        start = self.tick_after(max(at + self.delay_s, self.end_time()))
        self.runs.append((start, start_ms, start_ms + frames * 20.0))
        echoes = []
        for index in range(frames):
            clock.on_frame_sent(at)
            if (index + 1) % marks_every == 0:
                name = f"m{start_ms + (index + 1) * 20:.0f}"
                clock.on_mark_sent(name, 1)
                echoes.append((start + (index + 1) * PACKET_S + self.delay_s, name))
        return echoes

    def end_time(self) -> float:
        if not self.runs:
            return -math.inf
        start, from_ms, to_ms = self.runs[-1]
        return start + (to_ms - from_ms) / 1000.0

    def committed_at(self, t: float) -> float:
        """Twilio's time ``t``: the end of the packet playing (past recall)."""
        start, from_ms, to_ms = self.runs[-1]
        if t < start:
            return from_ms
        return min(from_ms + (math.floor((t - start) / PACKET_S) + 1) * 20.0, to_ms)


def probed(clock: PlaybackClock, delay_s: float) -> None:
    for n in range(5):
        name = clock.on_probe_sent(n * 0.03)
        clock.on_mark_echo(name, n * 0.03 + 2 * delay_s)


@example(phase_s=0.0, delay_s=0.0, gaps=[1.0, 1.09375, 1.1], cut_s=0.0546875)  # on a tick
@example(phase_s=0.0, delay_s=0.0, gaps=[1.0, 1.09375, 1.1], cut_s=0.125)  # (float noise)
@settings(max_examples=300, deadline=None)
@given(
    phase_s=st.floats(0.0, PACKET_S, exclude_max=True),
    delay_s=st.floats(0.0, 0.1),
    gaps=st.lists(st.floats(0.3, 1.5), min_size=3, max_size=3),
    cut_s=st.floats(0.05, 1.9),
)
def test_a_clear_stops_at_the_end_of_the_packet_twilio_was_playing(
    phase_s: float, delay_s: float, gaps: list[float], cut_s: float
) -> None:
    """With no jitter the clock knows each run's tick: the truth is always inside the
    bounds, and the estimate is that packet's end, or (arriving within a few ms of one)
    the point between the two packets it cannot tell apart."""
    clock, player = PlaybackClock(), PacketPlayer(phase_s, delay_s)
    probed(clock, delay_s)
    t = 1.0
    for gap in gaps:  # earlier replies, played whole: their echoes teach the phase
        for back, name in player.send_run(clock, t, 50, marks_every=10):
            assert clock.on_mark_echo(name, back).kind == "played"
        t = player.end_time() + gap
    echoes = player.send_run(clock, t, 100, marks_every=10)  # 2 s, cut at ``cut_s``
    cleared_at = t + cut_s
    for back, name in echoes:
        if back < cleared_at:
            clock.on_mark_echo(name, back)
    truth = player.committed_at(cleared_at + delay_s)
    clock.on_clear(cleared_at)
    estimate = clock.refine_clear(cleared_at + 2 * delay_s)
    assert estimate is not None
    assert estimate.lower_ms - 0.5 <= truth <= estimate.upper_ms + 0.5
    assert abs(estimate.played_ms - truth) <= 10.0 + 0.5
    arrival_in_packet_ms = ((cleared_at + delay_s - phase_s) % PACKET_S) * 1000.0
    if 5.0 < arrival_in_packet_ms < 15.0:  # far from either end: no doubt which packet
        assert estimate.played_ms == pytest.approx(truth, abs=0.5)


def cut_under_jitter(
    rng: random.Random, delay_s: float, jitter_s: float
) -> tuple[ClearEstimate, float]:
    """One call's cut-in, every message a trip of ``delay_s`` +/- ``jitter_s``: two replies
    played whole, then a third cut somewhere in its 3 s; the estimate and the truth."""

    def trip() -> float:
        return delay_s + rng.uniform(-jitter_s, jitter_s)

    clock, player = PlaybackClock(), PacketPlayer(rng.uniform(0.0, PACKET_S), 0.0)
    for n in range(5):
        name = clock.on_probe_sent(n * 0.03)
        clock.on_mark_echo(name, n * 0.03 + trip() + trip())
    t, cleared_at = 1.0, math.inf
    for frames in (50, 50, 150):
        player.delay_s = trip()  # the run's audio reaches Twilio
        echoes = player.send_run(clock, t, frames, marks_every=5)
        if frames == 150:
            cleared_at = t + rng.uniform(0.3, 2.5)
        back = sorted((at - player.delay_s + trip(), name) for at, name in echoes)
        for at, name in back:
            if at < cleared_at:
                clock.on_mark_echo(name, at)
        t = player.end_time() + 0.5
    arrival = cleared_at + trip()
    truth = player.committed_at(arrival)
    clock.on_clear(cleared_at)
    estimate = clock.refine_clear(arrival + trip())  # the first flushed echo
    assert estimate is not None
    return estimate, truth


def test_under_jitter_a_cut_is_rarely_a_packet_off() -> None:
    """60 +/- 15 ms each way, as bench/heard.py's worst setting: the truth inside the
    bounds every time, and no more than 5 % of cuts 20 ms or more off (issue 13's P95 of
    15 ms). The clock must hedge near a packet's end, but by less than half a packet: past
    that its window holds two packet ends, and it names one packet again."""
    rng = random.Random(13)
    cuts = [cut_under_jitter(rng, 0.060, 0.015) for _ in range(1000)]
    assert all(e.lower_ms - 0.5 <= truth <= e.upper_ms + 0.5 for e, truth in cuts)
    off = [abs(e.played_ms - truth) for e, truth in cuts]
    assert sum(error >= 19.5 for error in off) <= 0.05 * len(off), sorted(off)[-30:]


def test_before_any_echo_a_clear_is_bounded_by_the_packets_either_side() -> None:
    """A cut-in in the greeting's first second: no echo yet, so the packet clock's phase is
    unknown; the bounds hold the truth whatever the phase."""
    for phase_ms in range(0, 20, 2):
        clock, player = PlaybackClock(), PacketPlayer(phase_ms / 1000.0, 0.04)
        probed(clock, 0.04)
        player.send_run(clock, 1.0, 100, marks_every=100)
        for cut_ms in (120, 333, 800, 950):
            truth = player.committed_at(1.0 + cut_ms / 1000.0 + 0.04)
            trial = PlaybackClock()
            probed(trial, 0.04)
            send(trial, 1.0, 100)
            estimate = trial.on_clear(1.0 + cut_ms / 1000.0)
            assert estimate.lower_ms <= truth <= estimate.upper_ms, (phase_ms, cut_ms)
            assert abs(estimate.played_ms - truth) <= 20.0, (phase_ms, cut_ms)
