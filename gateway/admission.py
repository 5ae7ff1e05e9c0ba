"""Admission control, sans I/O: how many calls this process takes, and which it refuses.

Capacity is measured (``bench/load.py``): past it every caller's replies slow down,
so the call over capacity is refused at the webhook, before Twilio opens a stream,
and the calls already admitted keep their latency. A call holds its place from
its webhook on: between the TwiML answer and the stream's ``start`` it is
``pending`` (for at most the stream token's lifetime), then ``active`` until the
stream ends; a burst of webhooks therefore cannot overfill the process.
"""

from __future__ import annotations

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
