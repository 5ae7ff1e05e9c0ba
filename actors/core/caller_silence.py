"""How long the caller has left the floor unused, and what that calls for, sans I/O.

The clock starts when the floor becomes the caller's: the agent finished a reply
(heard in full), or the caller stopped talking and nothing answers them. It stops
when either side talks again. Past ``reprompt_s`` the agent asks whether the caller
is still there; past ``hangup_s`` (counted from the same start: the reprompt itself
does not reset it) it says goodbye and ends the call. A caller who was cut off or
walked away is not left on an open line, and the call's minutes are not billed for
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SilenceVerdict(StrEnum):
    REPROMPT = "reprompt"
    HANG_UP = "hang_up"


@dataclass
class CallerSilence:
    reprompt_s: float
    hangup_s: float
    since: float | None = None  # when the floor became the caller's; None: someone talks
    reprompted: bool = False

    def floor_free(self, now: float) -> None:
        """Nobody talks from ``now`` (kept if the clock already runs: the reprompt's end)."""
        if self.since is None:
            self.since = now

    def someone_talks(self) -> None:
        """The caller spoke, or the agent took the floor with an answer: the clock stops."""
        self.since = None
        self.reprompted = False

    def due_at(self) -> float | None:
        if self.since is None:
            return None
        return self.since + (self.hangup_s if self.reprompted else self.reprompt_s)

    def check(self, now: float) -> SilenceVerdict | None:
        due = self.due_at()
        if due is None or now < due:
            return None
        if self.reprompted:
            self.since = None
            return SilenceVerdict.HANG_UP
        self.reprompted = True
        return SilenceVerdict.REPROMPT

    def waited_ms(self, now: float) -> float:
        return 0.0 if self.since is None else (now - self.since) * 1000.0
