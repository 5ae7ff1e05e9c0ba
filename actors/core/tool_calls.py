"""Tools offered to the model, and the model's calls read back from its reply, sans I/O.

Tools go to the server in the chat API's ``tools`` field (OpenAI's function schema),
so the model's own chat template describes them: Qwen's and Hermes-style templates
ask for a call as ``{"name": ..., "arguments": {...}}`` inside ``<tool_call>`` tags.
A server with a tool parser (vLLM's ``--tool-call-parser``) returns the call in
``delta.tool_calls``; one without (llama.cpp's server, which also drops the tags as
special tokens) returns it as the reply's text. Both are read: the ``ToolCallReader``
passes speakable text on and keeps a reply that is a call (it begins with ``{`` or
``<tool_call>``, which no spoken sentence does) out of the caller's ears.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from actors.core.agent import END_CALL, TRANSFER_CALL, Agent

TOOL_TAG = "<tool_call>"
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: JsonObject


def tool_schemas(agent: Agent) -> list[JsonObject]:
    """The agent's tools and allowed built-in actions, as the chat API's ``tools``."""
    schemas = [
        _function(
            tool.name,
            tool.description,
            {
                name: {
                    "type": p.type,
                    "description": p.description,
                    **({"enum": p.enum} if p.enum else {}),
                }
                for name, p in tool.parameters.items()
            },
            [name for name, p in tool.parameters.items() if p.required],
        )
        for tool in agent.tools
    ]
    if END_CALL in agent.actions:
        schemas.append(
            _function(END_CALL, "End the call, once the caller has said goodbye.", {}, [])
        )
    if TRANSFER_CALL in agent.actions and agent.transfer_targets:
        targets = list(agent.transfer_targets)
        schemas.append(
            _function(
                TRANSFER_CALL,
                "Put the caller through to a person, when they ask for one.",
                {"target": {"type": "string", "enum": targets, "description": "who to call"}},
                ["target"],
            )
        )
    return schemas


def _function(
    name: str, description: str, properties: JsonObject, required: list[str]
) -> JsonObject:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


class ToolCallReader:
    """Reads one reply for a tool call, keeping the call from the caller's ears.

    ``text`` is fed the reply's deltas and returns the part that may go on to be
    phrased; ``speakable`` is asked about each phrase before it is spoken. A reply
    that begins with ``{`` or ``<tool_call>`` is a call (no spoken sentence does). A
    small model also mixes the two: "Sure! Call the `book_table` function with
    {party_size: 2, ...}". A phrase that shows code (braces, backticks), names a
    tool or talks of functions or JSON is never spoken, nor anything after it, and
    the call is read from the whole reply (``call``), so the caller hears "Sure!"
    and then what the tool did, never the plumbing.
    """

    def __init__(self, tool_names: tuple[str, ...] = ()) -> None:
        self._tool_names = tool_names
        self._mode: str | None = None  # "text", "call", or "mixed" once code showed up
        self._held = ""  # the reply until its mode is known; then a call's text
        self._text = ""  # everything passed on as text (a mixed reply's call is in it)
        self._structured: dict[int, dict[str, str]] = {}

    def text(self, delta: str) -> str:
        if self._mode in ("text", "mixed"):
            self._text += delta
            return delta
        self._held += delta
        if self._mode == "call":
            return ""
        visible = self._held.lstrip()
        if not visible:
            return ""
        if visible.startswith("{") or visible.startswith(TOOL_TAG):
            self._mode = "call"
            return ""
        if len(visible) < len(TOOL_TAG) and TOOL_TAG.startswith(visible):
            return ""  # perhaps the tag, still arriving
        return self._to_text()

    def flush(self) -> str:
        """At the reply's end: text held back in case it began a tag, which it did not."""
        return self._to_text() if self._mode is None else ""

    def _to_text(self) -> str:
        self._mode = "text"
        held, self._held = self._held, ""
        self._text += held
        return held

    def speakable(self, phrase: str) -> bool:
        """Whether ``phrase`` may be spoken: not once the reply has shown code."""
        if self._mode == "mixed":
            return False
        lowered = phrase.lower()
        if any(mark in phrase for mark in "{}`<>") or any(
            word in lowered for word in (*self._tool_names, "json", "function", "argument")
        ):
            self._mode = "mixed"
            return False
        return True

    def _join(self, deltas: list[JsonObject]) -> None:
        """OpenAI ``delta.tool_calls`` entries, their fragments joined by ``index``."""
        for delta in deltas:
            part = self._structured.setdefault(
                int(delta.get("index", 0)), {"id": "", "name": "", "arguments": ""}
            )
            function = delta.get("function") or {}
            part["id"] = part["id"] or str(delta.get("id") or "")
            # In fragments, or whole in the first (OpenAI, vLLM), or whole again in every
            # one (llama-cpp-python's forced calls): a repeat is not appended.
            name = str(function.get("name") or "")
            if name != part["name"]:
                part["name"] += name
            part["arguments"] += str(function.get("arguments") or "")

    def call(self, structured: list[JsonObject] | None = None) -> ToolCall | None:
        """The reply's first tool call: from the ``structured`` deltas a server with a tool
        parser sent, from a reply that is a call, or from a mixed reply. ``ValueError`` for
        a call that cannot be read (the model's garbage is a failed reply, not silence)."""
        self._join(structured or [])
        if self._structured:
            first = self._structured[min(self._structured)]
            return ToolCall(
                first["id"] or "call_1", first["name"], _arguments(first["arguments"] or "{}")
            )
        if self._mode == "call":
            text = self._held.strip().removeprefix(TOOL_TAG).split("</tool_call>")[0]
            decoded = _first_object(text)
            if decoded is None:
                raise ValueError(f"a tool call that is not JSON: {text[:200]!r}")
            return _as_call(decoded, None, text)
        if self._mode != "mixed":
            return None
        named = next((name for name in self._tool_names if name in self._text), None)
        decoded = _first_object(self._text)
        if decoded is None:
            raise ValueError(f"the model described a call instead of making it: {self._text!r}")
        return _as_call(decoded, named, self._text)


def _first_object(text: str) -> JsonObject | None:
    """The first ``{...}`` in ``text`` as a JSON object; keys left unquoted (as a small
    model writes ``{party_size: 2}``) are quoted first, and braces it left open (Qwen2.5
    0.5B drops the last one of a call) are closed. None if there is none."""
    start = text.find("{")
    if start < 0:
        return None
    candidate = text[start:].rstrip()
    unclosed = candidate.count("{") - candidate.count("}")
    if 0 < unclosed <= 2:
        candidate += "}" * unclosed
    for attempt in (candidate, re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', candidate)):
        try:
            decoded, _ = json.JSONDecoder().raw_decode(attempt)
        except json.JSONDecodeError:
            continue
        if isinstance(decoded, dict):
            return decoded
    return None


def _as_call(decoded: JsonObject, named: str | None, text: str) -> ToolCall:
    """A decoded object as a call: ``{"name", "arguments"}``, or bare arguments of the tool
    the reply ``named``."""
    name = decoded.get("name") if "arguments" in decoded or "parameters" in decoded else None
    if isinstance(name, str):
        arguments = decoded.get("arguments", decoded.get("parameters", {}))
    elif named is not None:
        name, arguments = named, decoded
    else:
        raise ValueError(f"a tool call without a function name: {text[:200]!r}")
    if isinstance(arguments, str):
        arguments = _arguments(arguments)
    if not isinstance(arguments, dict):
        raise ValueError(f"tool arguments are not an object: {text[:200]!r}")
    return ToolCall("call_1", name, arguments)


def _arguments(text: str) -> JsonObject:
    decoded = json.loads(text)
    if not isinstance(decoded, dict):
        raise ValueError(f"tool arguments are not an object: {text[:200]!r}")
    return decoded


def spoken_result(result: JsonObject) -> str | None:
    """What the tool's answer says the caller should hear, if it says (``say``)."""
    say = result.get("say")
    return say.strip() if isinstance(say, str) and say.strip() else None


def with_tool_turn(chat: list[JsonObject], call: ToolCall, result: JsonObject) -> list[JsonObject]:
    """The chat, then the model's call and the tool's answer, as the Hermes/Qwen templates
    render them (plain text: every server and template takes it, strict or not)."""
    called = json.dumps({"name": call.name, "arguments": call.arguments})
    answered = json.dumps(result)
    return [
        *chat,
        {"role": "assistant", "content": f"{TOOL_TAG}\n{called}\n</tool_call>"},
        {"role": "user", "content": f"<tool_response>\n{answered}\n</tool_response>"},
    ]
