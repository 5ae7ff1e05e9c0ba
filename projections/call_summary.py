"""One call, summed up for the operator's post-call webhook: who called, what was said and
heard, which tools were used, how it ended, and how quickly the agent answered.

Built only from the call's events (the replay's turns and metrics, ``projections.replay``),
so a summary sent a day late, by another gateway, is the same as one sent at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from events.catalogue import AnyEvent, CallEnded, CallStarted, CallTransferred
from projections.heard import ToolTurn
from projections.replay import fold_all, to_json


def call_summary(events: Sequence[AnyEvent]) -> dict[str, Any]:
    if not events:
        raise ValueError("a call with no events has nothing to summarise")
    call_sid = events[0].call_sid
    view = fold_all(events)
    replay = to_json(view, call_sid)
    replay_turns: list[dict[str, Any]] = replay["turns"]  # type: ignore[assignment]
    started = next((e for e in events if isinstance(e, CallStarted)), None)
    ended = next((e for e in events if isinstance(e, CallEnded)), None)
    transfer = next((e for e in events if isinstance(e, CallTransferred)), None)
    return {
        "call_sid": call_sid,
        "from": started.from_number if started else "",
        "to": started.to_number if started else "",
        "started_unix": started.wall_time_unix if started else None,
        "duration_s": round(events[-1].at_ms / 1000.0, 3),
        "outcome": ended.reason if ended else "in progress",
        "transferred_to": transfer.target if transfer else None,
        "turns": [turn for turn in replay_turns if turn["role"] != "tool"],
        "tools": [_tool(turn) for turn in view.heard.turns if isinstance(turn, ToolTurn)],
        "metrics": replay["metrics"],
    }


def _tool(turn: ToolTurn) -> dict[str, Any]:
    return {
        "name": turn.name,
        "arguments": _json(turn.arguments),
        "result": None if turn.result is None else _json(turn.result),
        "error": turn.error,
    }


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a forgotten call's "[forgotten]"
