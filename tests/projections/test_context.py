"""The Context a long call shows the LLM: within its token budget, and still only what was
heard (a generated 200-turn call)."""

from __future__ import annotations

import itertools
import random

import msgspec

from projections.context import (
    EARLIER_OMITTED,
    INTERRUPTED_MARKER,
    Message,
    context_messages,
    estimated_tokens,
    to_chat,
)
from projections.heard import AgentTurn, CallerTurn, Heard
from projections.words import PlacedWord

SYSTEM = "You are the phone receptionist of The Harbour."


def long_call(turns: int = 200, seed: int = 3) -> list[Message]:
    rng = random.Random(seed)
    words = [
        "table",
        "booking",
        "seven",
        "tonight",
        "fish",
        "parking",
        "menu",
        "noon",
        "name",
        "thanks",
    ]
    messages = []
    for n in range(turns):
        said = " ".join(rng.choice(words) for _ in range(rng.randint(2, 30)))
        if n % 2 == 0:
            messages.append(Message("user", f"{n}: {said}"))
        else:
            messages.append(Message("assistant", f"{n}: {said}", interrupted=rng.random() < 0.2))
    return messages


def test_a_long_call_fits_its_budget_keeping_the_newest_turns_exactly_as_heard() -> None:
    messages = long_call()
    whole = to_chat(messages, SYSTEM)
    assert sum(estimated_tokens(m["content"]) for m in whole) > 1500  # it would not fit
    fitted = to_chat(messages, SYSTEM, budget_tokens=1500)
    assert sum(estimated_tokens(m["content"]) for m in fitted) <= 1500
    assert fitted[0] == {"role": "system", "content": f"{SYSTEM} {EARLIER_OMITTED}"}
    kept = fitted[1:]
    assert kept == whole[-len(kept) :]  # the newest turns, unchanged: still what was heard
    assert kept[0]["role"] == "user" and kept[-1] == whole[-1]
    assert sum(estimated_tokens(m["content"]) for m in fitted) >= 1500 // 4
    assert len(kept) > 5 and any(INTERRUPTED_MARKER in m["content"] for m in kept)


def test_a_short_call_is_shown_whole_and_the_newest_turn_always_stays() -> None:
    messages = long_call(6)
    assert to_chat(messages, SYSTEM, budget_tokens=10_000) == to_chat(messages, SYSTEM)
    tiny = to_chat(messages, SYSTEM, budget_tokens=1)
    assert tiny[1:] == to_chat(messages, SYSTEM)[-1:]  # over budget, but never empty


def test_as_a_call_grows_the_chat_keeps_its_beginning_for_many_replies() -> None:
    """An LLM server reuses its work on a prompt's unchanged beginning: the first turn
    shown moves only when the budget is outgrown, by three quarters of a budget at a time
    (planted: one turn dropped per reply moved it on 157 of 200 replies)."""
    messages = long_call(400)
    budget = 600
    firsts, total = [], 0
    for end in range(1, len(messages) + 1, 2):  # the chat sent after each caller turn
        chat = to_chat(messages[:end], SYSTEM, budget_tokens=budget)
        size = sum(estimated_tokens(m["content"]) for m in chat)
        assert size <= budget and chat[1]["role"] == "user" and chat[-1]["role"] == "user"
        assert size >= budget // 4 - 60 or chat[0]["content"] == SYSTEM  # never thinned out
        firsts.append(chat[1]["content"])
        total = sum(estimated_tokens(m.content) for m in messages[:end])
    moves = sum(a != b for a, b in itertools.pairwise(firsts))
    assert 0 < moves <= total // (budget * 3 // 4) + 1, (moves, total)


def test_agent_turns_are_shown_in_the_order_heard_and_the_filler_not_at_all() -> None:
    """The answer is asked for at the end of the turn, the holding line later, but the
    caller heard "One moment, please." first: so does the model. The filler ("Mm,") is a
    sound, not words: shown it, a small model starts its answers with it."""
    answer = AgentTurn(2, "caller_turn", words=placed("We close at ten.", 1500.0))
    answer = msgspec.structs.replace(
        answer, out_start_ms=1500.0, out_end_ms=2500.0, heard_end_ms=2500.0
    )
    filler = AgentTurn(3, "filler", words=placed("Mm, let me see.", 0.0))
    filler = msgspec.structs.replace(filler, out_start_ms=0.0, out_end_ms=180.0, heard_end_ms=180.0)
    hold = AgentTurn(4, "hold", words=placed("One moment, please.", 180.0))
    hold = msgspec.structs.replace(hold, out_start_ms=180.0, out_end_ms=1500.0, heard_end_ms=1500.0)
    never_sent = AgentTurn(5, "hold")
    asked = CallerTurn(1, "When do you close?")
    heard = Heard(turns=(asked, answer, filler, hold, never_sent))
    assert context_messages(heard) == [
        Message("user", "When do you close?"),
        Message("assistant", "One moment, please."),
        Message("assistant", "We close at ten."),
    ]
    chat = to_chat(context_messages(heard), SYSTEM)
    assert chat[-1] == {"role": "assistant", "content": "One moment, please. We close at ten."}


def placed(text: str, start_ms: float) -> tuple[PlacedWord, ...]:
    """Words 150 ms apart from ``start_ms``, each 100 ms long."""
    return tuple(
        PlacedWord(word, start_ms + 150.0 * i, start_ms + 150.0 * i + 100.0)
        for i, word in enumerate(text.split())
    )
