"""The Heard projection: what each party heard, turn by turn.

``fold(state, event) -> state`` is pure: states are frozen and never mutated,
so any prefix of a call can be folded, kept, and folded further. For each agent
turn it keeps the outbound range the turn occupied and how far playback got
inside it (``heard_end_ms``, on the outbound axis); ``heard_ms`` and
``heard_text`` are derived from those, so they can never disagree.

Playback progress comes only from evidence the playback clock vouches for:
``MarkPlayed`` (an echo that left Twilio before any clear) and
``ReplyTruncated`` (the clock's estimate of where a clear cut the turn). Audio
merely sent or generated never counts as heard. Heard never shrinks: progress
only moves forward and is clamped to what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from events.catalogue import (
    AudioSent,
    CallEnded,
    CallStarted,
    DtmfReceived,
    Event,
    MarkPlayed,
    ReplyRequested,
    ReplyTextGenerated,
    ReplyTruncated,
    SpeechSynthesized,
    StageFailed,
    ToolCalled,
    ToolFailed,
    ToolResult,
    TranscriptFinal,
)
from projections.words import HeardWords, PlacedWord, heard_words


class CallerTurn(msgspec.Struct, frozen=True):
    turn: int
    text: str
    inbound_start_ms: float = 0.0
    inbound_end_ms: float = 0.0


class AgentTurn(msgspec.Struct, frozen=True):
    reply_id: int
    reason: str
    generated_text: str = ""
    words: tuple[PlacedWord, ...] = ()
    out_start_ms: float | None = None
    out_end_ms: float = 0.0
    heard_end_ms: float = 0.0
    proven_end_ms: float = 0.0  # the furthest mark echoed as played: certainly heard
    interrupted: bool = False
    heard_lower_ms: float | None = None
    heard_upper_ms: float | None = None

    @property
    def sent_ms(self) -> float:
        return 0.0 if self.out_start_ms is None else self.out_end_ms - self.out_start_ms

    @property
    def heard_ms(self) -> float:
        """Milliseconds of this turn's audio that played, from its first byte."""
        if self.out_start_ms is None:
            return 0.0
        return min(max(self.heard_end_ms - self.out_start_ms, 0.0), self.sent_ms)

    def heard(self) -> HeardWords:
        """Words heard for certain: up to a played mark, or the cut's lower bound."""
        if self.out_start_ms is None:
            return HeardWords("", "")
        certain = None
        if self.heard_lower_ms is not None:
            certain = max(self.proven_end_ms, self.out_start_ms + self.heard_lower_ms)
        return heard_words(self.words, self.out_start_ms + self.heard_ms, certain)

    @property
    def heard_text(self) -> str:
        return self.heard().text


class ToolTurn(msgspec.Struct, frozen=True):
    """A tool the agent used while answering (never heard as such; what it said about it
    is the reply's own turn, which follows). ``result`` or ``error``, once it answered."""

    reply_id: int
    call_id: str
    name: str
    arguments: str
    result: str | None = None
    error: str | None = None


Turn = CallerTurn | AgentTurn | ToolTurn


class Heard(msgspec.Struct, frozen=True):
    call_sid: str = ""
    turns: tuple[Turn, ...] = ()
    ended_reason: str | None = None

    def agent_turns(self) -> list[AgentTurn]:
        return [turn for turn in self.turns if isinstance(turn, AgentTurn)]


def _replace_agent(
    state: Heard, reply_id: int, change: Callable[[AgentTurn], AgentTurn | None]
) -> Heard:
    """Apply ``change`` to the agent turn ``reply_id`` (searched from the newest)."""
    turns = state.turns
    for index in range(len(turns) - 1, -1, -1):
        turn = turns[index]
        if isinstance(turn, AgentTurn) and turn.reply_id == reply_id:
            updated = change(turn)
            if updated is None or updated is turn:
                return state
            return msgspec.structs.replace(
                state, turns=turns[:index] + (updated,) + turns[index + 1 :]
            )
    return state


def _on_call_started(state: Heard, event: CallStarted) -> Heard:
    return msgspec.structs.replace(state, call_sid=event.call_sid)


def _on_call_ended(state: Heard, event: CallEnded) -> Heard:
    return msgspec.structs.replace(state, ended_reason=event.reason)


def _on_transcript_final(state: Heard, event: TranscriptFinal) -> Heard:
    if not event.text.strip():
        return state
    turn = CallerTurn(event.turn, event.text, event.inbound_start_ms, event.inbound_end_ms)
    return msgspec.structs.replace(state, turns=state.turns + (turn,))


def _on_key(state: Heard, event: DtmfReceived) -> Heard:
    """A key press is something the caller said: the model reads it in words."""
    turn = CallerTurn(0, f"(I pressed {event.digit} on my keypad.)")
    return msgspec.structs.replace(state, turns=state.turns + (turn,))


def _on_tool_called(state: Heard, event: ToolCalled) -> Heard:
    """Placed before the reply it was called for: the model called, then spoke."""
    turn = ToolTurn(event.reply_id, event.call_id, event.name, event.arguments)
    turns = state.turns
    for index in range(len(turns) - 1, -1, -1):
        found = turns[index]
        if isinstance(found, AgentTurn) and found.reply_id == event.reply_id:
            return msgspec.structs.replace(state, turns=(*turns[:index], turn, *turns[index:]))
    return msgspec.structs.replace(state, turns=(*turns, turn))


def _on_tool_answer(state: Heard, event: ToolResult | ToolFailed) -> Heard:
    turns = state.turns
    for index in range(len(turns) - 1, -1, -1):
        found = turns[index]
        if isinstance(found, ToolTurn) and found.call_id == event.call_id:
            if isinstance(event, ToolResult):
                answered = msgspec.structs.replace(found, result=event.result)
            else:
                answered = msgspec.structs.replace(found, error=event.error)
            changed = (*turns[:index], answered, *turns[index + 1 :])
            return msgspec.structs.replace(state, turns=changed)
    return state


def _on_reply_requested(state: Heard, event: ReplyRequested) -> Heard:
    turn = AgentTurn(event.reply_id, event.reason)
    return msgspec.structs.replace(state, turns=state.turns + (turn,))


def _on_text(state: Heard, event: ReplyTextGenerated) -> Heard:
    return _replace_agent(
        state,
        event.reply_id,
        lambda t: msgspec.structs.replace(t, generated_text=t.generated_text + event.text),
    )


def _on_retry(state: Heard, event: StageFailed) -> Heard:
    """A failed attempt is retried: its text was never spoken, the retry's replaces it."""
    if event.action != "retry" or event.reply_id is None:
        return state
    return _replace_agent(
        state, event.reply_id, lambda t: msgspec.structs.replace(t, generated_text="")
    )


def _on_synthesized(state: Heard, event: SpeechSynthesized) -> Heard:
    placed = tuple(
        PlacedWord(w.text, event.out_start_ms + w.start_ms, event.out_start_ms + w.end_ms)
        for w in event.words
    )
    return _replace_agent(
        state, event.reply_id, lambda t: msgspec.structs.replace(t, words=t.words + placed)
    )


def _on_audio_sent(state: Heard, event: AudioSent) -> Heard:
    def extend(turn: AgentTurn) -> AgentTurn | None:
        if turn.interrupted:
            return None
        start = event.out_start_ms if turn.out_start_ms is None else turn.out_start_ms
        return msgspec.structs.replace(
            turn, out_start_ms=start, out_end_ms=max(turn.out_end_ms, event.out_end_ms)
        )

    return _replace_agent(state, event.reply_id, extend)


def _on_mark_played(state: Heard, event: MarkPlayed) -> Heard:
    def advance(turn: AgentTurn) -> AgentTurn | None:
        if event.out_ms <= turn.heard_end_ms:
            return None
        return msgspec.structs.replace(turn, heard_end_ms=event.out_ms, proven_end_ms=event.out_ms)

    return _replace_agent(state, event.reply_id, advance)


def _on_truncated(state: Heard, event: ReplyTruncated) -> Heard:
    def cut(turn: AgentTurn) -> AgentTurn:
        start = turn.out_start_ms or 0.0
        return msgspec.structs.replace(
            turn,
            heard_end_ms=max(turn.heard_end_ms, start + event.heard_ms),
            interrupted=True,
            heard_lower_ms=event.heard_lower_ms,
            heard_upper_ms=event.heard_upper_ms,
        )

    return _replace_agent(state, event.reply_id, cut)


_HANDLERS: dict[type[Event], Callable[[Heard, Event], Heard]] = {
    CallStarted: _on_call_started,  # type: ignore[dict-item]
    CallEnded: _on_call_ended,  # type: ignore[dict-item]
    TranscriptFinal: _on_transcript_final,  # type: ignore[dict-item]
    DtmfReceived: _on_key,  # type: ignore[dict-item]
    ToolCalled: _on_tool_called,  # type: ignore[dict-item]
    ToolResult: _on_tool_answer,  # type: ignore[dict-item]
    ToolFailed: _on_tool_answer,  # type: ignore[dict-item]
    ReplyRequested: _on_reply_requested,  # type: ignore[dict-item]
    ReplyTextGenerated: _on_text,  # type: ignore[dict-item]
    SpeechSynthesized: _on_synthesized,  # type: ignore[dict-item]
    AudioSent: _on_audio_sent,  # type: ignore[dict-item]
    MarkPlayed: _on_mark_played,  # type: ignore[dict-item]
    ReplyTruncated: _on_truncated,  # type: ignore[dict-item]
    StageFailed: _on_retry,  # type: ignore[dict-item]
}


def fold(state: Heard, event: Event) -> Heard:
    handler = _HANDLERS.get(type(event))
    return state if handler is None else handler(state, event)


def fold_all(events: Iterable[Event], state: Heard | None = None) -> Heard:
    state = Heard() if state is None else state
    for event in events:
        state = fold(state, event)
    return state


class LiveHeard:
    """A call's Heard projection, folded as its events are recorded.

    The recorder calls ``fold`` under its lock, in seq order. The supervisor builds
    each reply's context from ``state``; a replay of the stored call must reproduce
    it exactly. It holds no reference to the call's actors, so keeping it is cheap.
    """

    def __init__(self, state: Heard | None = None) -> None:
        self.state = state if state is not None else Heard()

    def fold(self, event: Event) -> None:
        self.state = fold(self.state, event)
