"""Replaying a call: fold its events through every projection, render the result.

The same code serves the live call and ``earshot replay``, so a stored call
replays to exactly the view the live call had.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from events.catalogue import Event
from projections import heard as heard_projection
from projections import metrics as metrics_projection
from projections.heard import AgentTurn, Heard, ToolTurn
from projections.metrics import Metrics


class CallView(msgspec.Struct, frozen=True):
    heard: Heard = Heard()
    metrics: Metrics = Metrics()
    last_seq: int = 0


def fold(view: CallView, event: Event) -> CallView:
    return CallView(
        heard_projection.fold(view.heard, event),
        metrics_projection.fold(view.metrics, event),
        event.seq,
    )


def fold_all(events: Iterable[Event], view: CallView | None = None) -> CallView:
    view = CallView() if view is None else view
    for event in events:
        view = fold(view, event)
    return view


def _ms(value: float) -> float:
    return round(value, 3)


def to_json(view: CallView, call_sid: str) -> dict[str, object]:
    """The replay document: ``{"call_sid", "turns": [...], "metrics": {...}}``."""
    turns: list[dict[str, object]] = []
    for turn in view.heard.turns:
        if isinstance(turn, AgentTurn):
            start = turn.out_start_ms or 0.0
            turns.append(
                {
                    "role": "agent",
                    "text": turn.generated_text,
                    "heard_text": turn.heard_text,
                    "out_start_ms": _ms(start),
                    "out_end_ms": _ms(turn.out_end_ms if turn.out_start_ms is not None else 0.0),
                    "heard_ms": _ms(turn.heard_ms),
                    "interrupted": turn.interrupted,
                }
            )
        elif isinstance(turn, ToolTurn):
            turns.append(
                {
                    "role": "tool",
                    "text": f"{turn.name}({turn.arguments})",
                    "heard_text": "",
                    "result": turn.result,
                    "error": turn.error,
                    "out_start_ms": 0.0,
                    "out_end_ms": 0.0,
                    "heard_ms": 0.0,
                    "interrupted": False,
                }
            )
        else:
            turns.append(
                {
                    "role": "caller",
                    "text": turn.text,
                    "heard_text": turn.text,
                    "out_start_ms": 0.0,
                    "out_end_ms": 0.0,
                    "heard_ms": 0.0,
                    "interrupted": False,
                }
            )
    return {
        "call_sid": call_sid,
        "turns": turns,
        "metrics": metrics_projection.summary(view.metrics),
    }


def to_text(view: CallView, call_sid: str) -> str:
    """A readable timeline: who said what, what the caller heard, latencies."""
    lines = [f"call {call_sid}  ({view.last_seq} events)"]
    latencies = {t.reply_id: t.latencies() for t in view.metrics.turns}
    for turn in view.heard.turns:
        if isinstance(turn, AgentTurn):
            heard = turn.heard()
            lines.append(f"  agent #{turn.reply_id} ({turn.reason}): {turn.generated_text!r}")
            cut = "  INTERRUPTED" if turn.interrupted else ""
            partial = f" (cut mid-word: {heard.partial_word!r})" if heard.partial_word else ""
            lines.append(
                f"      heard {turn.heard_ms:.0f} of {turn.sent_ms:.0f} ms: "
                f"{heard.text!r}{partial}{cut}"
            )
            parts = [
                f"{name[:-3]} {value:.0f} ms"
                for name, value in latencies.get(turn.reply_id, {}).items()
                if value is not None
            ]
            if parts:
                lines.append("      " + ", ".join(parts))
        elif isinstance(turn, ToolTurn):
            answer = f"-> {turn.result}" if turn.error is None else f"FAILED: {turn.error}"
            lines.append(f"  tool {turn.name}({turn.arguments}) {answer}")
        else:
            lines.append(f"  caller #{turn.turn}: {turn.text!r}")
    if view.heard.ended_reason is not None:
        lines.append(f"  call ended: {view.heard.ended_reason}")
    return "\n".join(lines)
