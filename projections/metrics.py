"""The Timeline/Metrics projection: per-turn latencies and interruptions.

Latencies are differences of ``at_ms`` (the call's monotonic clock) between the
events that bound each stage: end of caller speech (VAD decision) -> final
transcript -> first LLM text -> first synthesized phrase -> first audio sent;
and for interruptions, barge-in detected -> clear sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import msgspec

from events.catalogue import (
    AudioSent,
    BargeInDetected,
    CallerAudioGap,
    ClearSent,
    Event,
    FrameRefused,
    ReplyRequested,
    ReplyTextGenerated,
    SpeechStopped,
    SpeechSynthesized,
    TranscriptFinal,
)


class TurnMetrics(msgspec.Struct, frozen=True):
    reply_id: int
    reason: str
    requested_at_ms: float
    caller_stopped_at_ms: float | None = None
    transcript_at_ms: float | None = None
    first_text_at_ms: float | None = None
    first_speech_at_ms: float | None = None
    first_audio_at_ms: float | None = None
    barge_in_at_ms: float | None = None
    clear_at_ms: float | None = None

    def latencies(self) -> dict[str, float | None]:
        return {
            "stt_final_ms": _diff(self.transcript_at_ms, self.caller_stopped_at_ms),
            "llm_ttft_ms": _diff(self.first_text_at_ms, self.requested_at_ms),
            "tts_first_audio_ms": _diff(self.first_speech_at_ms, self.first_text_at_ms),
            "response_ms": _diff(self.first_audio_at_ms, self.caller_stopped_at_ms),
            "stop_ms": _diff(self.clear_at_ms, self.barge_in_at_ms),
        }


class Metrics(msgspec.Struct, frozen=True):
    turns: tuple[TurnMetrics, ...] = ()
    last_speech_stopped_at_ms: float | None = None
    last_transcript_at_ms: float | None = None
    frames_refused: int = 0
    audio_gaps: int = 0
    audio_gap_ms: float = 0.0


def _diff(later: float | None, earlier: float | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round(later - earlier, 3)


def _update_turn(state: Metrics, reply_id: int, field: str, at_ms: float) -> Metrics:
    """Set ``field`` on turn ``reply_id`` the first time only."""
    turns = state.turns
    for index in range(len(turns) - 1, -1, -1):
        turn = turns[index]
        if turn.reply_id == reply_id:
            if getattr(turn, field) is not None:
                return state
            updated = msgspec.structs.replace(turn, **{field: at_ms})
            return msgspec.structs.replace(
                state, turns=turns[:index] + (updated,) + turns[index + 1 :]
            )
    return state


def _on_request(state: Metrics, event: ReplyRequested) -> Metrics:
    after_caller = event.reason == "caller_turn"
    turn = TurnMetrics(
        event.reply_id,
        event.reason,
        event.at_ms,
        caller_stopped_at_ms=state.last_speech_stopped_at_ms if after_caller else None,
        transcript_at_ms=state.last_transcript_at_ms if after_caller else None,
    )
    return msgspec.structs.replace(state, turns=state.turns + (turn,))


_FIRST_OF: dict[type[Event], str] = {
    ReplyTextGenerated: "first_text_at_ms",
    SpeechSynthesized: "first_speech_at_ms",
    AudioSent: "first_audio_at_ms",
    BargeInDetected: "barge_in_at_ms",
    ClearSent: "clear_at_ms",
}


def fold(state: Metrics, event: Event) -> Metrics:
    kind = type(event)
    field = _FIRST_OF.get(kind)
    if field is not None:
        return _update_turn(state, event.reply_id, field, event.at_ms)  # type: ignore[attr-defined]
    handler = _HANDLERS.get(kind)
    return state if handler is None else handler(state, event)


_HANDLERS: dict[type[Event], Callable[[Metrics, Event], Metrics]] = {
    ReplyRequested: _on_request,  # type: ignore[dict-item]
    SpeechStopped: lambda s, e: msgspec.structs.replace(s, last_speech_stopped_at_ms=e.at_ms),
    TranscriptFinal: lambda s, e: msgspec.structs.replace(s, last_transcript_at_ms=e.at_ms),
    FrameRefused: lambda s, e: msgspec.structs.replace(s, frames_refused=s.frames_refused + 1),
    CallerAudioGap: lambda s, e: msgspec.structs.replace(
        s,
        audio_gaps=s.audio_gaps + 1,
        audio_gap_ms=s.audio_gap_ms + e.gap_ms,  # type: ignore[attr-defined]
    ),
}


def fold_all(events: Iterable[Event], state: Metrics | None = None) -> Metrics:
    state = Metrics() if state is None else state
    for event in events:
        state = fold(state, event)
    return state


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(state: Metrics) -> dict[str, object]:
    """Counts and P50/P95 of each latency over the call's turns."""
    per_turn = [turn.latencies() for turn in state.turns]
    result: dict[str, object] = {
        "agent_turns": len(state.turns),
        "interruptions": sum(1 for t in state.turns if t.barge_in_at_ms is not None),
        "frames_refused": state.frames_refused,
        "audio_gaps": state.audio_gaps,
        "audio_gap_ms": round(state.audio_gap_ms, 3),
    }
    for name in ("stt_final_ms", "llm_ttft_ms", "tts_first_audio_ms", "response_ms", "stop_ms"):
        values = [v for latency in per_turn if (v := latency[name]) is not None]
        result[f"{name}_p50"] = percentile(values, 50)
        result[f"{name}_p95"] = percentile(values, 95)
    return result
