"""A call on one time axis, the call's own clock (``at_ms``): what the call page draws.

Three clocks meet in a call. Events carry the call clock. The caller's speech sits on
the inbound axis, which starts with the stream and runs in real time (Twilio sends
20 ms every 20 ms), so its milliseconds are the call clock's. The agent's words sit on
the outbound axis, which has no idle time between replies: each word is placed by its
reply's marks echoed as played, at real time from the nearest one (``played_at``), as
``heard_audio`` places the agent's audio; a reply no mark proved played (cut before
its first word ended) is placed from when its first audio was sent.

So a word's place on the page is where the caller heard it (one network leg late,
as the caller's own speech is), and the cut of an interrupted reply sits with its
estimate's bounds, where the playback clock put it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import msgspec

from events.catalogue import (
    AudioSent,
    BargeInDetected,
    CallEnded,
    CallerSilent,
    CallTransferred,
    ClearSent,
    DtmfReceived,
    Event,
    LineYielded,
    MarkFlushed,
    MarkPlayed,
    RecordingStarted,
    SilenceFilled,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    ToolCalled,
    ToolFailed,
    ToolResult,
    TurnNotAnswered,
)
from projections import heard as heard_projection
from projections import metrics as metrics_projection
from projections.heard import AgentTurn, CallerTurn


class Word(msgspec.Struct, frozen=True):
    text: str
    start_ms: float
    end_ms: float
    heard: str  # "heard", "partial" (playing at the cut) or "unheard"


class Latency(msgspec.Struct, frozen=True):
    """An answer's way to the caller: end of their turn, first token, first audio sent,
    first audio heard (None where the reply never got that far)."""

    turn_end_ms: float | None
    first_token_ms: float | None
    first_audio_ms: float | None
    heard_ms: float | None


class Cut(msgspec.Struct, frozen=True):
    """Where a clear stopped a reply, on the call clock, and the estimate's bounds."""

    at_ms: float
    lower_ms: float
    upper_ms: float


class AgentSpan(msgspec.Struct, frozen=True):
    reply_id: int
    reason: str
    text: str
    heard_text: str
    words: tuple[Word, ...]
    cut: Cut | None
    latency: Latency | None


class CallerSpan(msgspec.Struct, frozen=True):
    """A caller turn as transcribed (``text``), or raw voice activity (``text`` None)."""

    start_ms: float
    end_ms: float
    text: str | None


class MarkEcho(msgspec.Struct, frozen=True):
    at_ms: float
    reply_id: int
    played: bool  # False: flushed by a clear, proving nothing


class Happening(msgspec.Struct, frozen=True):
    at_ms: float
    kind: str  # "barge_in", "clear", "tool", "failure", "silence", "key", "transfer", ...
    text: str


class Timeline(msgspec.Struct, frozen=True):
    call_sid: str
    duration_ms: float
    caller: tuple[CallerSpan, ...]
    speech: tuple[CallerSpan, ...]
    agent: tuple[AgentSpan, ...]
    marks: tuple[MarkEcho, ...]
    happenings: tuple[Happening, ...]


def played_at(out_ms: float, echoes: list[tuple[float, float]]) -> float:
    """When ``out_ms`` of the outbound stream played, on the call clock, from a reply's
    echoes ((out_ms, at_ms), sorted): the first echo at or past it, or the last one."""
    index = bisect.bisect_left([out for out, _ in echoes], out_ms)
    mark_out, mark_at = echoes[min(index, len(echoes) - 1)]
    return mark_at - (mark_out - out_ms)


def build(events: Iterable[Event], call_sid: str = "") -> Timeline:
    events = list(events)
    heard = heard_projection.fold_all(events)
    metrics = metrics_projection.fold_all(events)
    echoes: dict[int, list[tuple[float, float]]] = {}
    first_sent: dict[int, tuple[float, float]] = {}
    for event in events:
        if isinstance(event, MarkPlayed):
            echoes.setdefault(event.reply_id, []).append((event.out_ms, event.at_ms))
        elif isinstance(event, AudioSent):
            first_sent.setdefault(event.reply_id, (event.out_start_ms, event.at_ms))
    for pairs in echoes.values():
        pairs.sort()
    latencies = {turn.reply_id: turn for turn in metrics.turns}
    agent = tuple(
        _agent_span(turn, echoes.get(turn.reply_id) or _sent(first_sent, turn.reply_id), latencies)
        for turn in heard.agent_turns()
    )
    caller = tuple(
        CallerSpan(turn.inbound_start_ms, turn.inbound_end_ms, turn.text)
        for turn in heard.turns
        if isinstance(turn, CallerTurn) and turn.inbound_end_ms > 0.0
    )
    marks = tuple(
        MarkEcho(e.at_ms, e.reply_id, isinstance(e, MarkPlayed))
        for e in events
        if isinstance(e, MarkPlayed | MarkFlushed)
    )
    happenings = tuple(h for e in events if (h := _happening(e)) is not None)
    ends = [e.at_ms for e in events] + [w.end_ms for span in agent for w in span.words]
    return Timeline(
        call_sid or (events[0].call_sid if events else ""),
        round(max(ends, default=0.0), 3),
        caller,
        _voice_activity(events),
        agent,
        marks,
        happenings,
    )


def _sent(first_sent: dict[int, tuple[float, float]], reply_id: int) -> list[tuple[float, float]]:
    return [first_sent[reply_id]] if reply_id in first_sent else []


def _agent_span(
    turn: AgentTurn,
    echoes: list[tuple[float, float]],
    latencies: dict[int, metrics_projection.TurnMetrics],
) -> AgentSpan:
    words: tuple[Word, ...] = ()
    cut = None
    heard_at = None
    if echoes and turn.out_start_ms is not None:
        heard = turn.heard()
        heard_count = len(heard.text.split())
        words = tuple(
            Word(
                w.text,
                round(played_at(w.out_start_ms, echoes), 3),
                round(played_at(w.out_end_ms, echoes), 3),
                "heard"
                if index < heard_count
                else "partial"
                if index == heard_count and heard.partial_word
                else "unheard",
            )
            for index, w in enumerate(turn.words)
        )
        heard_at = round(played_at(turn.out_start_ms, echoes), 3)
        if turn.interrupted and turn.heard_lower_ms is not None:
            upper = turn.heard_upper_ms if turn.heard_upper_ms is not None else turn.heard_ms
            cut = Cut(
                round(heard_at + turn.heard_ms, 3),
                round(heard_at + turn.heard_lower_ms, 3),
                round(heard_at + upper, 3),
            )
    measured = latencies.get(turn.reply_id)
    latency = None
    if measured is not None and measured.caller_stopped_at_ms is not None:
        latency = Latency(
            measured.caller_stopped_at_ms,
            measured.first_text_at_ms,
            measured.first_audio_at_ms,
            heard_at,
        )
    return AgentSpan(
        turn.reply_id, turn.reason, turn.generated_text, turn.heard_text, words, cut, latency
    )


def _voice_activity(events: list[Event]) -> tuple[CallerSpan, ...]:
    """The VAD's speech spans on the inbound axis (a noise is one too)."""
    spans, started = [], None
    for event in events:
        if isinstance(event, SpeechStarted):
            started = event.inbound_ms
        elif isinstance(event, SpeechStopped) and started is not None:
            spans.append(CallerSpan(started, event.inbound_ms, None))
            started = None
    return tuple(spans)


def _happening(event: Event) -> Happening | None:
    """The moments the page marks on the axis, each with a line saying what happened."""
    at = event.at_ms
    if isinstance(event, BargeInDetected):
        return Happening(at, "barge_in", f"the caller cut in on reply {event.reply_id}")
    if isinstance(event, ClearSent):
        return Happening(at, "clear", f"clear sent: reply {event.reply_id} stopped")
    if isinstance(event, ToolCalled):
        return Happening(at, "tool", f"tool {event.name}({event.arguments})")
    if isinstance(event, ToolResult):
        return Happening(at, "tool", f"tool answered in {event.ms:.0f} ms: {event.result}")
    if isinstance(event, ToolFailed):
        return Happening(at, "failure", f"tool {event.name} failed: {event.error}")
    if isinstance(event, StageFailed):
        return Happening(at, "failure", f"{event.stage} failed ({event.error}): {event.action}")
    if isinstance(event, SilenceFilled):
        return Happening(at, "silence", f"dead air {event.waited_ms:.0f} ms: {event.action}")
    if isinstance(event, LineYielded):
        return Happening(
            at, "silence", f"filler stopped at {event.kept_ms:.0f} ms: the answer was ready"
        )
    if isinstance(event, CallerSilent):
        return Happening(at, "silence", f"caller silent {event.silent_ms:.0f} ms: {event.action}")
    if isinstance(event, TurnNotAnswered):
        return Happening(at, "unanswered", f"turn {event.turn} not answered: {event.reason}")
    if isinstance(event, DtmfReceived):
        return Happening(at, "key", f"the caller pressed {event.digit}")
    if isinstance(event, CallTransferred):
        return Happening(at, "transfer", f"transfer to {event.target} ({event.reason})")
    if isinstance(event, RecordingStarted):
        return Happening(at, "recording", "recording started: the announcement was heard")
    if isinstance(event, CallEnded):
        return Happening(at, "end", f"call ended: {event.reason}")
    return None
