"""The Liveness projection: where the caller was left in silence past the bound.

Two kinds of silence count. After each caller turn (``SpeechStopped``) the caller
must hear the agent (the first ``AudioSent`` after it) within ``bound_ms``, unless
the turn was recorded as needing no answer (``TurnNotAnswered``), the caller spoke
again first, or the call ended: anything else is a dead-air turn. And once an
answer has begun to sound, it may still go quiet before its model is done (the
model writes a tool's arguments, the tool runs, the model words its result, tokens
trickle under load): each such quiet is a reply gap, from the answer's last frame
sent to the next frame of anything (an upper bound of what the caller heard: the
phone still played what was buffered, up to the pacer's lead). As with a turn, the
holding line ends a gap, and the quiet after it is the give-up's to end. Both are
what the property tests check never happens and what ``bench/load.py`` counts
under load. The supervisor folds the same state live (``LiveLiveness``) to know
when an answer has gone quiet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from events.catalogue import (
    AudioSent,
    CallEnded,
    Event,
    ReplyCompleted,
    ReplyRequested,
    ReplyTruncated,
    SpeechStarted,
    SpeechStopped,
    StageCancelled,
    StageFailed,
    ToolCalled,
    ToolFailed,
    ToolResult,
    TurnNotAnswered,
)

BOUND_S = 2.5
"""After a caller's turn the agent is heard within this (``EARSHOT_LIVENESS_BOUND_S``)."""
FRAME_MS = 20.0  # each AudioSent is one frame: frames this far apart leave no gap
GAP_KEPT_MS = 100.0  # shorter gaps (a late pacer tick) are not kept


class Liveness(msgspec.Struct, frozen=True):
    bound_ms: float = BOUND_S * 1000.0
    owed_since_ms: float | None = None  # the end of a caller turn still owed agent audio
    dead_air_ms: tuple[float, ...] = ()  # how long each late turn waited (past the bound)
    generating: frozenset[int] = frozenset()  # replies asked of the model, not yet done
    sounding: int | None = None  # one of them that the caller has begun to hear
    sounding_audio_ms: float | None = None  # its own last frame
    quiet_from_ms: float | None = None  # where the present quiet in it began
    gap_from_ms: float | None = None  # its own last frame, while nothing else sounded since
    tools_running: frozenset[str] = frozenset()  # call ids with no answer yet
    reply_gaps_ms: tuple[float, ...] = ()  # each quiet in a sounding reply, >= GAP_KEPT_MS

    def dead_air_turns(self, now_ms: float | None = None) -> tuple[float, ...]:
        """The late turns, counting one still waiting at ``now_ms`` (the end of the record)."""
        if self.owed_since_ms is not None and now_ms is not None:
            waited = now_ms - self.owed_since_ms
            if waited > self.bound_ms:
                return self.dead_air_ms + (waited,)
        return self.dead_air_ms

    def silent_gaps(self) -> tuple[float, ...]:
        """The reply gaps past the bound: dead air inside an answer."""
        return tuple(gap for gap in self.reply_gaps_ms if gap > self.bound_ms)


def _settle(state: Liveness, at_ms: float) -> Liveness:
    if state.owed_since_ms is None:
        return state
    waited = at_ms - state.owed_since_ms
    late = state.dead_air_ms + ((waited,) if waited > state.bound_ms else ())
    return msgspec.structs.replace(state, owed_since_ms=None, dead_air_ms=late)


def _audio(state: Liveness, event: AudioSent) -> Liveness:
    gaps = state.reply_gaps_ms
    if state.gap_from_ms is not None:
        gap = event.at_ms - state.gap_from_ms - FRAME_MS
        gaps += (gap,) if gap >= GAP_KEPT_MS else ()
    sounding, own = state.sounding, state.sounding_audio_ms
    if event.reply_id in state.generating:
        sounding, own = event.reply_id, event.at_ms
    ours = sounding is not None and event.reply_id == sounding
    return msgspec.structs.replace(
        _settle(state, event.at_ms),
        sounding=sounding,
        sounding_audio_ms=own,
        quiet_from_ms=event.at_ms if sounding is not None else None,
        gap_from_ms=event.at_ms if ours else None,
        reply_gaps_ms=gaps,
    )


NOT_SOUNDING: dict[str, None] = {
    "sounding": None,
    "sounding_audio_ms": None,
    "quiet_from_ms": None,
    "gap_from_ms": None,
}


def _done(state: Liveness, reply_id: int) -> Liveness:
    """The model is done with ``reply_id`` (complete, cut, failed): no gap is owed in it."""
    if reply_id not in state.generating:
        return state
    rest = state.generating - {reply_id}
    if state.sounding != reply_id:
        return msgspec.structs.replace(state, generating=rest)
    return msgspec.structs.replace(state, generating=rest, **NOT_SOUNDING)


def fold(state: Liveness, event: Event) -> Liveness:
    if isinstance(event, AudioSent):
        return _audio(state, event)
    if isinstance(event, SpeechStopped):
        # The caller's own speech was no gap: a quiet in the answer counts from here on.
        resumed = event.at_ms if state.sounding is not None else None
        return msgspec.structs.replace(
            _settle(state, event.at_ms),
            owed_since_ms=event.at_ms,
            quiet_from_ms=resumed,
            gap_from_ms=resumed,
        )
    if isinstance(event, SpeechStarted):
        settled = _settle(state, event.at_ms)
        return msgspec.structs.replace(settled, quiet_from_ms=None, gap_from_ms=None)
    if isinstance(event, CallEnded):
        ended = _settle(state, event.at_ms)
        return msgspec.structs.replace(ended, generating=frozenset(), **NOT_SOUNDING)
    if isinstance(event, TurnNotAnswered):
        return _settle(state, event.at_ms)
    if isinstance(event, ReplyRequested):
        return msgspec.structs.replace(state, generating=state.generating | {event.reply_id})
    if isinstance(event, ReplyCompleted | StageCancelled | ReplyTruncated):
        return _done(state, event.reply_id)
    if isinstance(event, StageFailed) and event.reply_id is not None:
        return _done(state, event.reply_id)
    if isinstance(event, ToolCalled):
        return msgspec.structs.replace(state, tools_running=state.tools_running | {event.call_id})
    if isinstance(event, ToolResult | ToolFailed):
        return msgspec.structs.replace(state, tools_running=state.tools_running - {event.call_id})
    return state


def fold_all(events: Iterable[Event], state: Liveness | None = None) -> Liveness:
    state = Liveness() if state is None else state
    for event in events:
        state = fold(state, event)
    return state


class LiveLiveness:
    """A call's Liveness, folded as its events are recorded (a recorder listener, like
    ``LiveHeard``): read by the supervisor to tell an answer that went quiet.
    ``on_sounding`` is called when an answer begins to sound, or sounds again after
    another line (a holding line) or the caller: from then on its quiet is timed anew."""

    def __init__(self, on_sounding: Callable[[], None] | None = None) -> None:
        self.state = Liveness()
        self.on_sounding = on_sounding

    def fold(self, event: Event) -> None:
        before = self.state
        self.state = fold(before, event)
        after = self.state
        timed_anew = before.gap_from_ms is None or before.sounding != after.sounding
        if self.on_sounding is not None and after.gap_from_ms is not None and timed_anew:
            self.on_sounding()
