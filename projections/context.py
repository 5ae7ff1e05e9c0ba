"""The Context projection: the LLM conversation, built only from what was heard.

Caller turns are their final transcripts. Agent turns are the Heard text, never
the generated text: words the caller never heard must not enter the model's
memory (pitfall 1, context drift); in the order the caller heard them; the filler
left out. A turn the caller cut into is marked, so the
model knows it was interrupted and where. A tool the agent used is a fact of the
call, not something said: it stays in the conversation as the model's call and the
tool's answer (``<tool_call>`` / ``<tool_response>``, as Hermes-style templates
write them), so a booking made is remembered even if its confirmation was cut off.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

from projections.heard import AgentTurn, Heard, ToolTurn, Turn

INTERRUPTED_MARKER = "[the caller interrupted you here]"
# The agent's filler ("Mm, let me see.") is a sound made while thinking, not something it
# said: shown it, the 0.5B model starts its next answers with it ("Yes, Mm, let me see.").
FILLER_REASON = "filler"


class Message(NamedTuple):
    role: str  # "user" | "assistant"
    content: str
    interrupted: bool = False


def context_messages(heard: Heard) -> list[Message]:
    """The conversation as the model should remember it."""
    messages: list[Message] = []
    for turn in in_heard_order(heard.turns):
        if isinstance(turn, AgentTurn):
            if turn.reason == FILLER_REASON:
                continue
            text = turn.heard_text
            if text or turn.interrupted:
                messages.append(Message("assistant", text, turn.interrupted))
        elif isinstance(turn, ToolTurn):
            call = f'{{"name": {json.dumps(turn.name)}, "arguments": {turn.arguments}}}'
            answer = turn.result if turn.error is None else json.dumps({"error": turn.error})
            messages.append(Message("assistant", f"<tool_call>\n{call}\n</tool_call>"))
            messages.append(Message("user", f"<tool_response>\n{answer}\n</tool_response>"))
        else:
            messages.append(Message("user", turn.text))
    return messages


def in_heard_order(turns: tuple[Turn, ...]) -> list[Turn]:
    """The turns, with agent turns next to each other in the order the caller heard them: a
    holding line said while the answer was coming is asked for after it but heard first
    ("One moment, please. We close at ten."). Turns never heard keep their place after
    the rest."""
    ordered: list[Turn] = []
    run: list[AgentTurn] = []
    for turn in turns:
        if isinstance(turn, AgentTurn):
            run.append(turn)
            continue
        ordered.extend(_heard_first(run))
        run = []
        ordered.append(turn)
    ordered.extend(_heard_first(run))
    return ordered


def _heard_first(run: list[AgentTurn]) -> list[AgentTurn]:
    return sorted(run, key=lambda t: math.inf if t.out_start_ms is None else t.out_start_ms)


EARLIER_OMITTED = "(The earlier part of this call is not shown.)"


def estimated_tokens(text: str) -> int:
    """A conservative token count for English chat text (about four characters a token,
    plus the chat template's few tokens a message)."""
    return len(text) // 4 + 4


def to_chat(
    messages: list[Message], system_prompt: str, budget_tokens: int | None = None
) -> list[dict[str, str]]:
    """OpenAI-style chat messages, with interruptions spelled out for the model.

    An agent turn cut before any of its words was heard is left out of the chat: the
    caller heard nothing of it, and a turn that is only the marker is what a small
    model copies and says aloud. With a ``budget_tokens``, the oldest turns are dropped
    whole until the rest fits (the newest turn always stays): what remains is
    still exactly what was heard, and the model is told that earlier turns are missing.
    They are dropped in blocks of three quarters of the budget (``_within``), so the
    chat keeps its beginning for many turns in a row."""
    chat = [{"role": "system", "content": system_prompt}]
    for message in messages:
        content = message.content
        if message.role == "assistant" and not content:
            continue
        if message.interrupted:
            content = f"{content} {INTERRUPTED_MARKER}".strip()
        if chat[-1]["role"] == message.role:  # keep roles alternating for strict chat templates
            chat[-1] = {"role": message.role, "content": f"{chat[-1]['content']} {content}"}
        else:
            chat.append({"role": message.role, "content": content})
    if budget_tokens is None:
        return chat
    return _within(chat, budget_tokens)


def _within(chat: list[dict[str, str]], budget_tokens: int) -> list[dict[str, str]]:
    """The chat from the first block start at which the rest fits the budget.

    Block starts are the turns at which the conversation's running token count crosses
    a multiple of three quarters of the budget: fixed once passed, so the first turn
    shown stays the same from reply to reply until the budget is outgrown, then moves on
    by a block, leaving about a quarter of the budget: the reply after a move re-reads
    little, and moves are rare.
    An LLM server reuses its work on the unchanged beginning of a prompt; dropping one
    turn per reply changed the beginning every time, and the embedded server (about
    100 prompt tokens a second on two cores) re-read the whole context for each reply:
    15 s at 1,500 tokens, and a long call fell silent after five minutes."""
    system, turns = chat[0], chat[1:]
    note = {"role": "system", "content": f"{system['content']} {EARLIER_OMITTED}"}
    sizes = [estimated_tokens(m["content"]) for m in turns]
    room = budget_tokens - estimated_tokens(note["content"])
    step = max(1, budget_tokens * 3 // 4)
    starts, running = [0], 0
    for index, size in enumerate(sizes[:-1]):
        running += size
        if running // step > (running - size) // step:
            starts.append(index + 1)
    remaining = sum(sizes)
    if remaining + estimated_tokens(system["content"]) <= budget_tokens:
        return chat
    dropped = len(turns) - 1  # the newest turn stays, even over budget
    for start in starts[1:]:
        if remaining - sum(sizes[:start]) <= room:
            dropped = start
            break
    if dropped and turns[dropped]["role"] == "assistant" and len(turns) - dropped > 1:
        dropped += 1  # a conversation shown from a caller's turn
    if not dropped:
        return chat
    return [note, *turns[dropped:]]
