"""A call's tool calls, carried out for its Llm actor: recorded, run, covered, answered.

The model asked for a tool while answering a caller: the call is recorded
(``ToolCalled``), a built-in action is handed to the supervisor (the policy ends
or transfers the call), and an operator's tool is run on the process's pool. If it
has not answered after ``HOLD_AFTER_S`` the caller hears the tool's holding line,
so a slow booking system never means dead air; the answer is recorded
(``ToolResult``), or the failure (``ToolFailed``) and the caller hears an apology
and the call goes on. Either way the tool's answer is waited for (within its
timeout) even if the caller cut in: a booking made must be in the record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from actors.core.agent import BUILT_IN_ACTIONS, Agent, Tool
from actors.core.tool_calls import ToolCall, tool_schemas
from actors.engines.tool_client import ToolError, ToolRunner
from actors.messages import ModelAction
from events.catalogue import ToolCalled, ToolFailed, ToolResult
from events.recorder import CallRecorder

HOLD_AFTER_S = 0.7  # a tool still running this long: the caller hears the holding line
TOOL_APOLOGY = "Sorry, I couldn't get that done just now. Could we try again in a moment?"


@dataclass(frozen=True)
class Tools:
    """The process's tools: the agent's endpoints, their schemas for the model, the pool."""

    agent: Agent
    runner: ToolRunner
    schemas: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schemas", tool_schemas(self.agent))

    def named(self, name: str) -> Tool | None:
        return next((tool for tool in self.agent.tools if tool.name == name), None)


class ToolUse:
    def __init__(
        self, tools: Tools, recorder: CallRecorder, report: Callable[[object], None]
    ) -> None:
        self.tools = tools
        self.recorder = recorder
        self.report = report  # to the supervisor

    def holding_line(self, must_call: str | None) -> str | None:
        """The line said at once for a reply that must call ``must_call``, if a tool."""
        tool = self.tools.named(must_call) if must_call is not None else None
        return tool.holding if tool is not None else None

    def run(
        self, reply_id: int, call: ToolCall, say: Callable[[str], None], *, held: bool = False
    ) -> dict[str, Any] | None:
        """Carry out ``call``; the tool's answer if the model is to word it, else None
        (an action handed on, or a failure apologised for: nothing more to generate).
        ``held``: the caller heard the holding line already (said when the call was due)."""
        record = self.recorder.record
        arguments = json.dumps(call.arguments, separators=(",", ":"))
        fields: dict[str, Any] = {"reply_id": reply_id, "call_id": call.call_id, "name": call.name}
        record(ToolCalled, arguments=arguments, **fields)
        if call.name in BUILT_IN_ACTIONS and call.name in self.tools.agent.actions:
            target = call.arguments.get("target")
            self.report(ModelAction(call.name, target if isinstance(target, str) else None))
            return None
        tool = self.tools.named(call.name)
        started = time.monotonic()
        try:
            if tool is None:
                raise ToolError(f"the model called {call.name!r}, which is not a tool here")
            result = self._wait(tool, call, None if held else say)
        except ToolError as failure:
            ms = round((time.monotonic() - started) * 1000.0, 1)
            record(ToolFailed, error=str(failure)[:500], ms=ms, **fields)
            say(TOOL_APOLOGY)
            return None
        ms = round((time.monotonic() - started) * 1000.0, 1)
        record(ToolResult, result=json.dumps(result), ms=ms, **fields)
        return result

    def _wait(
        self, tool: Tool, call: ToolCall, say: Callable[[str], None] | None
    ) -> dict[str, Any]:
        """The tool's answer; past ``HOLD_AFTER_S``, its holding line is said (if ``say``)."""
        future = self.tools.runner.submit(tool, call.arguments, self.recorder.call_sid)
        try:
            return dict(future.result(timeout=HOLD_AFTER_S))
        except FutureTimeout:
            if say is not None:
                say(tool.holding)
        try:
            return dict(future.result(timeout=max(tool.timeout_s - HOLD_AFTER_S, 0.0)))
        except FutureTimeout:
            future.cancel()
            raise ToolError(f"{tool.name} timed out after {tool.timeout_s:.1f} s") from None
