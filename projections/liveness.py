"""The Liveness projection: which caller turns were left in silence past the bound.

After each caller turn (``SpeechStopped``) the caller must hear the agent (the
first ``AudioSent`` after it) within ``bound_ms``, unless the turn was recorded
as needing no answer (``TurnNotAnswered``), the caller spoke again first, or the
call ended. Anything else, however it came about, is a dead-air turn: what the
property tests check never happens and what ``bench/load.py`` counts under load.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from events.catalogue import (
    AudioSent,
    CallEnded,
    Event,
    SpeechStarted,
    SpeechStopped,
    TurnNotAnswered,
)

BOUND_S = 2.5
"""After a caller's turn the agent is heard within this (``EARSHOT_LIVENESS_BOUND_S``)."""


class Liveness(msgspec.Struct, frozen=True):
    bound_ms: float = BOUND_S * 1000.0
    owed_since_ms: float | None = None  # the end of a caller turn still owed agent audio
    dead_air_ms: tuple[float, ...] = ()  # how long each late turn waited (past the bound)

    def dead_air_turns(self, now_ms: float | None = None) -> tuple[float, ...]:
        """The late turns, counting one still waiting at ``now_ms`` (the end of the record)."""
        if self.owed_since_ms is not None and now_ms is not None:
            waited = now_ms - self.owed_since_ms
            if waited > self.bound_ms:
                return self.dead_air_ms + (waited,)
        return self.dead_air_ms


def _settle(state: Liveness, at_ms: float) -> Liveness:
    if state.owed_since_ms is None:
        return state
    waited = at_ms - state.owed_since_ms
    late = state.dead_air_ms + ((waited,) if waited > state.bound_ms else ())
    return msgspec.structs.replace(state, owed_since_ms=None, dead_air_ms=late)


def fold(state: Liveness, event: Event) -> Liveness:
    if isinstance(event, SpeechStopped):
        return msgspec.structs.replace(_settle(state, event.at_ms), owed_since_ms=event.at_ms)
    if isinstance(event, AudioSent | SpeechStarted | CallEnded | TurnNotAnswered):
        return _settle(state, event.at_ms)
    return state


def fold_all(events: Iterable[Event], state: Liveness | None = None) -> Liveness:
    state = Liveness() if state is None else state
    for event in events:
        state = fold(state, event)
    return state
