"""Turn-taking decisions, sans I/O: who holds the floor, and what to do when that changes.

The supervisor feeds it what happened (a reply started, finished playing, the
caller started or stopped speaking) and carries out the actions it returns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BargeIn:
    """The caller talked over the agent: cancel and clear ``reply_id``."""

    reply_id: int
    inbound_ms: float


@dataclass
class TurnTaking:
    agent_reply: int | None = None  # the reply holding the floor (generating or playing)
    caller_speaking: bool = False
    next_reply_id: int = 1

    def start_reply(self) -> int:
        reply_id = self.next_reply_id
        self.next_reply_id += 1
        self.agent_reply = reply_id
        return reply_id

    def reply_played(self, reply_id: int) -> None:
        if self.agent_reply == reply_id:
            self.agent_reply = None

    def caller_started(self, inbound_ms: float) -> BargeIn | None:
        self.caller_speaking = True
        if self.agent_reply is None:
            return None
        reply_id, self.agent_reply = self.agent_reply, None
        return BargeIn(reply_id, inbound_ms)

    def caller_stopped(self) -> None:
        self.caller_speaking = False
