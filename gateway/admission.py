"""Admission control, sans I/O: how many calls this process takes, and which it refuses.

Capacity is measured (``bench/load.py``): past it every caller's replies slow down,
so the call over capacity is refused at the webhook, before Twilio opens a stream,
and the calls already admitted keep their latency. A call holds its place from
its webhook on: between the TwiML answer and the stream's ``start`` it is
``pending`` (for at most the stream token's lifetime), then ``active`` until the
stream ends; a burst of webhooks therefore cannot overfill the process.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Admission:
    capacity: int
    pending_for_s: float = 30.0  # a stream token's lifetime: a stream after that is refused
    pending: dict[str, float] = field(default_factory=dict)  # call -> when its place lapses
    active: set[str] = field(default_factory=set)

    def in_use(self, now: float) -> int:
        self.pending = {call: until for call, until in self.pending.items() if until > now}
        return len(self.pending) + len(self.active)

    def admit(self, call_sid: str, now: float) -> bool:
        """At the webhook: keep a place for this call, or refuse it (the line is busy)."""
        if call_sid in self.pending or call_sid in self.active:
            return True  # Twilio retried the webhook: the place is already held
        if self.in_use(now) >= self.capacity:
            return False
        self.pending[call_sid] = now + self.pending_for_s
        return True

    def stream_started(self, call_sid: str) -> None:
        """The call's stream was admitted (by its token): its place is in use until it ends.
        A stream whose webhook another gateway process answered is counted here too."""
        self.pending.pop(call_sid, None)
        self.active.add(call_sid)

    def call_ended(self, call_sid: str) -> None:
        self.pending.pop(call_sid, None)
        self.active.discard(call_sid)


@dataclass
class CallerRateLimit:
    """At most ``calls`` calls from one number within ``window_s``, so a number dialling in a
    loop (a robot, a stuck redialler) cannot take every line from the other callers.
    Twilio retrying one call's webhook counts once."""

    calls: int = 5
    window_s: float = 60.0
    recent: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)
    max_numbers: int = 100_000  # beyond this many numbers remembered, the stale are forgotten

    def allow(self, number: str, call_sid: str, now: float) -> bool:
        calls = self.recent.setdefault(number or "anonymous", deque())
        while calls and calls[0][0] <= now - self.window_s:
            calls.popleft()
        if any(sid == call_sid for _, sid in calls):
            return True
        if len(calls) >= self.calls:
            return False
        calls.append((now, call_sid))
        if len(self.recent) > self.max_numbers:
            self._forget_stale(now)
        return True

    def _forget_stale(self, now: float) -> None:
        self.recent = {
            number: calls
            for number, calls in self.recent.items()
            if calls and calls[-1][0] > now - self.window_s
        }
