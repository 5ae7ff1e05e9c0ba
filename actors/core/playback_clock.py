"""The playback clock: how far Twilio has played our outbound audio, at any moment.

Pure state over (time, observation) -> answers; no sockets, no threads, no clock
of its own: every method takes ``now`` (monotonic seconds).

The model. Twilio plays what we send in order, in real time, from a buffer. In
our own time frame, a frame sent at ``t`` starts playing at ``max(t, end of what
is buffered)``; the network delay only shifts that schedule by the one-way delay
``d``. So the clock keeps *runs* of continuous playback in sender time, and:

* ``d`` cancels for the question that matters: a ``clear`` sent at ``t_c``
  reaches Twilio ``d`` later, when playback has also been running ``d`` longer,
  so the position is the model's position at ``t_c`` (shifted by how much later
  than average this run's first frame arrived).
* Mark echoes measure that shift: mark ``X`` echoed at ``r`` played at
  ``r - rtt/2`` (our time); the model said ``model_time(X)``; the difference is
  the shift. The median of recent shifts corrects the estimate.
* The round trip comes from probe marks sent while Twilio's buffer is empty:
  Twilio echoes those at once.
* After ``clear``, Twilio echoes every pending mark at once: those carry no
  playback information. An echo arriving after the clear counts as played only
  if the model says it was due comfortably before the clear arrived.

Twilio plays its buffer out in whole 20 ms packets, on a clock that ticks every
packet whatever the stream does: a run starts at the first tick after its audio
arrives, a mark echoes as the packet before it ends, and a clear cannot recall the
packet playing (it is on its way to the phone), so playback stops at a packet's end.
The clock therefore keeps, per run, the shifts its own echoes measured (that run's
wait for the tick included), and learns the ticks' phase from every echo to place a
run none has come back from. Where a clear lands near a packet's end it cannot tell
which of two packets ends last, and reports the point between them.

The truncation is reported with bounds ``[lower, upper]``: never below a mark
echoed as played, never above what was sent.
"""

from __future__ import annotations

import bisect
import cmath
import math
import statistics
from collections import deque
from dataclasses import dataclass, field

FRAME_S = 0.020
PACKET_MS = 20.0  # Twilio's playout packet: playback stops only at the end of one
PROBE_PREFIX = "probe-"
PHASE_SAMPLES_TRUSTED = 3  # echoes before the packet clock's phase is used
# Half the window around a clear's estimated arrival inside which either of two packets
# may be the last one played (the estimate's own spread: echo jitter, timer lateness).
HEDGE_FLOOR_MS = 3.0
# The hedge per ms of one leg's jitter. At 60 +/- 15 ms a refined clear's arrival is ~5 ms
# off (P50) and a run's start (the median of its echoes) ~3 ms, which alone named the wrong
# packet for 17 of 100 cuts (bench/heard.py's calls, recorded, 2026-11-27). Always
# under half a packet: a wider window holds two packet ends, and the point between them is
# one packet's end again, so a wider hedge hedges less.
HEDGE_PER_JITTER = 0.5
HEDGE_PER_JITTER_REFINED = 0.8
HEDGE_BELOW_HALF_PACKET_MS = 0.5


@dataclass
class _Run:
    """Continuous playback: outbound ms ``[start_ms, end_ms)`` playing from sender time ``t0``."""

    t0: float
    start_ms: float
    end_ms: float
    shifts: list[float] = field(default_factory=list)  # measured by this run's own echoes


@dataclass(frozen=True)
class PendingMark:
    name: str
    reply_id: int
    out_ms: float


@dataclass(frozen=True)
class EchoVerdict:
    """What a mark echo meant: ``played``, ``flushed`` (by a clear), ``probe`` or ``unknown``."""

    kind: str
    mark: PendingMark | None = None


@dataclass(frozen=True)
class ClearEstimate:
    """Where playback stopped when a clear took effect (outbound ms), with bounds."""

    out_sent_ms: float
    played_ms: float
    lower_ms: float
    upper_ms: float
    flushed: tuple[PendingMark, ...]


LEAD_MS = 200.0  # outbound audio never runs further ahead of playback (pitfall 9)


@dataclass
class PlaybackClock:
    lead_ms: float = LEAD_MS
    packet_ms: float = PACKET_MS  # 0: continuous playback (no packet clock)
    sent_ms: float = 0.0
    buffer_end: float = float("-inf")  # sender time at which Twilio's buffer runs dry
    played_floor_ms: float = 0.0  # highest outbound position proven played by an echo
    _runs: list[_Run] = field(default_factory=list)
    _run_starts: list[float] = field(default_factory=list)
    _run_times: list[float] = field(default_factory=list)
    _pending: dict[str, PendingMark] = field(default_factory=dict)
    _probes: dict[str, float] = field(default_factory=dict)
    _rtts: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    _shifts: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    # Where in its period each played echo's packet ended (unit vectors: a circular mean).
    _phases: deque[complex] = field(default_factory=lambda: deque(maxlen=40))
    # Each clear: (sent time, played estimate, outbound position sent by then).
    _clears: list[tuple[float, float, float]] = field(default_factory=list)
    _probe_count: int = 0
    _open_clear: tuple[float, float] | None = None

    # --- pacing ------------------------------------------------------------

    def buffered_ms(self, now: float) -> float:
        """How much sent audio our model says is still waiting in Twilio's buffer."""
        return max(0.0, (self.buffer_end - now) * 1000.0)

    def next_send_at(self, now: float) -> float:
        """When the next frame may go out without the lead exceeding ``lead_ms``."""
        return max(now, self.buffer_end - self.lead_ms / 1000.0 + FRAME_S)

    def on_frame_sent(self, now: float, frame_ms: float = FRAME_S * 1000) -> tuple[float, float]:
        """Record one frame sent; returns its outbound range."""
        start = max(now, self.buffer_end)
        out_start = self.sent_ms
        run = self._runs[-1] if self._runs else None
        if run is not None and start == self.buffer_end and run.end_ms == out_start:
            run.end_ms += frame_ms
        else:
            self._runs.append(_Run(start, out_start, out_start + frame_ms))
            self._run_starts.append(out_start)
            self._run_times.append(start)
        self.sent_ms += frame_ms
        self.buffer_end = start + frame_ms / 1000.0
        return out_start, self.sent_ms

    def on_mark_sent(self, name: str, reply_id: int) -> float:
        self._pending[name] = PendingMark(name, reply_id, self.sent_ms)
        return self.sent_ms

    # --- round trip probes ------------------------------------------------

    def probe_due(self, now: float, every_s: float = 2.0, first_probes: int = 5) -> bool:
        """A probe is useful when Twilio's buffer is surely empty and none went out lately.

        The first ``first_probes`` go out 30 ms apart at the stream's start, before any
        audio: one round trip has the jitter of two legs and every estimate uses it.
        Spaced, not back to back: messages in one burst share one delay (in order on
        one TCP stream), so a burst is one sample, not five.
        """
        idle = now > self.buffer_end + self.rtt_s() + 0.1
        spacing = 0.03 if self._probe_count < first_probes else every_s
        recent = any(now - sent < spacing for sent in self._probes.values())
        return idle and not recent

    def probing(self, first_probes: int = 5) -> bool:
        return self._probe_count < first_probes

    def on_probe_sent(self, now: float) -> str:
        self._probe_count += 1
        name = f"{PROBE_PREFIX}{self._probe_count}"
        self._probes[name] = now
        return name

    def rtt_s(self) -> float:
        return statistics.median(self._rtts) if self._rtts else 0.0

    def rtt_spread_s(self) -> float:
        return (max(self._rtts) - min(self._rtts)) if len(self._rtts) > 1 else 0.0

    # --- echoes and clears ------------------------------------------------

    def on_mark_echo(self, name: str, now: float) -> EchoVerdict:
        sent = self._probes.pop(name, None)
        if sent is not None:
            self._rtts.append(now - sent)
            return EchoVerdict("probe")
        mark = self._pending.pop(name, None)
        if mark is None:
            return EchoVerdict("unknown")
        run = self._run_holding(mark.out_ms)
        due = None if run is None else run.t0 + (mark.out_ms - run.start_ms) / 1000.0
        if self._cleared_before(mark, due, now):
            return EchoVerdict("flushed", mark)
        played_at = now - self.rtt_s() / 2  # when its packet ended, in our time
        if run is not None and due is not None:
            self._shifts.append(played_at - due)
            run.shifts.append(played_at - due)
        if self.packet_ms:
            turn = (played_at % (self.packet_ms / 1000.0)) / (self.packet_ms / 1000.0)
            self._phases.append(cmath.exp(2j * math.pi * turn))
        self.played_floor_ms = max(self.played_floor_ms, mark.out_ms)
        return EchoVerdict("played", mark)

    def _cleared_before(self, mark: PendingMark, due: float | None, now: float) -> bool:
        """Was this mark dropped by a clear rather than played?"""
        for sent_at, played_est, sent_ms in reversed(self._clears):
            if sent_at > now:
                continue
            if mark.out_ms > sent_ms:
                return False  # sent after this clear (and so after every earlier one)
            if mark.out_ms > played_est:
                return True  # beyond where playback stopped: flushed
            if due is None:
                return True
            margin = self.rtt_spread_s() / 2 + 0.010
            arrival = sent_at + self.rtt_s() / 2
            return due + self._shift() > arrival - margin
        return False

    def _shift(self) -> float:
        """How much later than the model (plus half a round trip) playback really runs."""
        if not self._shifts:
            return self.rtt_s() / 2 + self.packet_ms / 2000.0  # the mean wait for a tick
        return statistics.median(self._shifts)

    def _tick_phase_s(self) -> float | None:
        """Where in its period Twilio's packet clock ticks, in our time, once echoes said."""
        if not self.packet_ms or len(self._phases) < PHASE_SAMPLES_TRUSTED:
            return None
        mean = sum(self._phases) / len(self._phases)
        if abs(mean) < 0.3:  # too scattered (jitter beyond the period) to say
            return None
        return (cmath.phase(mean) / (2 * math.pi)) % 1.0 * self.packet_ms / 1000.0

    def _run_shift(self, run: _Run) -> tuple[float, bool]:
        """How much later than the model this run really played, and whether that is known
        to the tick: from its own echoes, else from its start and the packet clock's phase;
        else the average of recent runs (the wait for the tick unknown)."""
        if run.shifts:
            return statistics.median(run.shifts), True
        phase = self._tick_phase_s()
        if phase is None:
            return self._shift(), False
        period = self.packet_ms / 1000.0
        arrival = run.t0 + self.rtt_s() / 2
        # Audio arriving on a tick plays from it (to within float noise: 7.200000000000001
        # is 7.2, not a packet later; hypothesis found that one).
        tick = phase + math.ceil((arrival - phase) / period - 1e-9) * period
        return tick - run.t0, True

    def _run_holding(self, out_ms: float) -> _Run | None:
        """The run whose outbound range holds ``out_ms`` (None: before or past them all)."""
        index = bisect.bisect_right(self._run_starts, out_ms) - 1
        if index < 0 or out_ms > self._runs[index].end_ms:
            return None
        return self._runs[index]

    def _run_at(self, t: float) -> tuple[_Run, float, bool] | None:
        """The run playing at our time ``t``, the last one started by then, with its shift
        and whether that is known to the tick (``_run_shift``)."""
        for run in reversed(self._runs):
            shift, known = self._run_shift(run)
            if run.t0 + shift <= t:
                return run, shift, known
        return None

    def _played_by(self, t: float) -> float:
        """The outbound position played, past recall, by our time ``t``: the end of the
        packet playing then (with no packet clock, the position itself)."""
        found = self._run_at(t)
        if found is None:
            return self._runs[0].start_ms if self._runs else 0.0
        run, shift, _ = found
        elapsed_ms = (t - run.t0 - shift) * 1000.0
        if self.packet_ms:
            elapsed_ms = (math.floor(elapsed_ms / self.packet_ms) + 1) * self.packet_ms
        return min(run.start_ms + elapsed_ms, run.end_ms)

    def position_at(self, t: float) -> float:
        """The model's outbound position playing at sender time ``t``."""
        index = bisect.bisect_right(self._run_times, t) - 1
        if index < 0:
            return self._runs[0].start_ms if self._runs else 0.0
        run = self._runs[index]
        return min(run.start_ms + (t - run.t0) * 1000.0, run.end_ms)

    def _jitter_ms(self) -> float:
        shifts = (max(self._shifts) - min(self._shifts)) if len(self._shifts) > 1 else 0.0
        return max(self.rtt_spread_s(), shifts) / 2 * 1000.0 + 10.0

    def _leg_jitter_ms(self) -> float:
        """How far one echo strays: half the spread of the round trips, or of one run's own
        echoes (across runs the shifts also differ by each run's wait for its tick)."""
        within = max((max(r.shifts) - min(r.shifts) for r in self._runs if r.shifts), default=0.0)
        return max(self.rtt_spread_s(), within) / 2 * 1000.0

    def _estimate(self, sent_at: float, clear_delay_s: float, *, refined: bool) -> ClearEstimate:
        """Playback position when a clear sent at ``sent_at`` arrived ``clear_delay_s`` later.

        Each run started ``_run_shift`` after the model's schedule, so the packet playing
        at ``sent_at + clear_delay`` is the last one played. Within ``hedge`` of a
        packet's end either one may be: the point between them is the estimate. The
        bounds allow the whole jitter seen, refined or not: the refinement halves the
        delay's typical error, not its worst one (seen: 20 ms past a halved bound).
        """
        arrival = sent_at + clear_delay_s
        found = self._run_at(arrival)
        known = found is not None and found[2]
        jitter_ms = self._jitter_ms()
        per_jitter = HEDGE_PER_JITTER_REFINED if refined else HEDGE_PER_JITTER
        hedge_ms = max(HEDGE_FLOOR_MS, self._leg_jitter_ms() * per_jitter)
        if self.packet_ms:
            hedge_ms = min(hedge_ms, self.packet_ms / 2 - HEDGE_BELOW_HALF_PACKET_MS)
        if not known:  # the run's tick unknown: which packet played, too
            hedge_ms, jitter_ms = hedge_ms + self.packet_ms / 2, jitter_ms + self.packet_ms / 2
        early = self._played_by(arrival - hedge_ms / 1000.0)
        late = self._played_by(arrival + hedge_ms / 1000.0)
        played = min(max((early + late) / 2, self.played_floor_ms), self.sent_ms)
        lower = max(self.played_floor_ms, self._played_by(arrival - jitter_ms / 1000.0))
        upper = min(self.sent_ms, self._played_by(arrival + jitter_ms / 1000.0))
        flushed = tuple(m for m in self._pending.values() if m.out_ms > played)
        return ClearEstimate(self.sent_ms, played, min(lower, played), max(upper, played), flushed)

    def on_clear(self, now: float) -> ClearEstimate:
        """A clear goes out at ``now``: estimate where it will stop playback.

        The first estimate takes the clear's one-way delay as half the round trip.
        ``refine_clear`` improves it once the first flushed echo is back.
        """
        estimate = self._estimate(now, self.rtt_s() / 2, refined=False)
        self._clears.append((now, estimate.played_ms, self.sent_ms))
        self._open_clear = (now, self.sent_ms)
        # The buffer is gone: whatever is sent next starts a new run (runs are kept up
        # to the estimate until refined, then cut).
        self.buffer_end = now
        return estimate

    def refine_clear(self, first_echo_at: float | None) -> ClearEstimate | None:
        """Final estimate for the last clear, given when its first flushed echo came back.

        That echo left Twilio as the clear arrived, so ``echo - sent - rtt/2`` is a
        second, independent estimate of the clear's one-way delay; averaging the two
        halves the variance of the delay term (the dominant error under jitter).
        """
        if self._open_clear is None:
            return None
        sent_at, sent_ms = self._open_clear
        self._open_clear = None
        half_rtt = self.rtt_s() / 2
        delay = half_rtt
        if first_echo_at is not None:
            measured = first_echo_at - sent_at - half_rtt
            delay = (half_rtt + min(max(measured, 0.0), 2 * half_rtt)) / 2
        estimate = self._estimate(sent_at, delay, refined=first_echo_at is not None)
        self._clears[-1] = (sent_at, estimate.played_ms, sent_ms)
        self._truncate_runs(estimate.played_ms, sent_ms)
        return ClearEstimate(
            sent_ms, estimate.played_ms, estimate.lower_ms, estimate.upper_ms, estimate.flushed
        )

    def _truncate_runs(self, played: float, cleared_sent_ms: float) -> None:
        """Audio between ``played`` and what was sent at the clear never plays: cut it."""
        kept = []
        for run in self._runs:
            if run.start_ms >= cleared_sent_ms:  # sent after the clear: untouched
                kept.append(run)
            elif run.start_ms < played or not kept:
                run.end_ms = min(run.end_ms, max(played, run.start_ms))
                kept.append(run)
        self._runs = kept
        self._run_starts = [run.start_ms for run in kept]
        self._run_times = [run.t0 for run in kept]
