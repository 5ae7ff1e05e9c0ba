"""The Context projection: the LLM conversation, built only from what was heard.

Caller turns are their final transcripts. Agent turns are the Heard text, never
the generated text: words the caller never heard must not enter the model's
memory (pitfall 1, context drift). A turn the caller cut into is marked, so the
model knows it was interrupted and where.
"""

from __future__ import annotations

from typing import NamedTuple

from projections.heard import AgentTurn, Heard

INTERRUPTED_MARKER = "[the caller interrupted you here]"


class Message(NamedTuple):
    role: str  # "user" | "assistant"
    content: str
    interrupted: bool = False


def context_messages(heard: Heard) -> list[Message]:
    """The conversation as the model should remember it."""
    messages: list[Message] = []
    for turn in heard.turns:
        if isinstance(turn, AgentTurn):
            text = turn.heard_text
            if text or turn.interrupted:
                messages.append(Message("assistant", text, turn.interrupted))
        else:
            messages.append(Message("user", turn.text))
    return messages


def to_chat(messages: list[Message], system_prompt: str) -> list[dict[str, str]]:
    """OpenAI-style chat messages, with interruptions spelled out for the model.

    An agent turn cut before any of its words was heard is left out of the chat: the
    caller heard nothing of it, and a turn that is only the marker is what a small
    model copies and says aloud."""
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
    return chat
