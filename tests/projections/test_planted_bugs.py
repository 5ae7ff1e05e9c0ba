"""Each property in ``call_history`` must catch a realistic bug planted in the code it guards.

A property that cannot fail proves nothing; these tests plant the bugs that peers
and careless refactors actually make, and require the state machine to find them.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from events import codec
from events.catalogue import Event, ReplyTextGenerated, ReplyTruncated
from projections import context, heard
from projections.heard import AgentTurn
from projections.words import HeardWords, heard_words
from tests.projections.call_history import CallHistory

FIND_IT = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    report_multiple_bugs=False,
    phases=[Phase.generate],  # finding the bug is the point; shrinking it only costs time
    suppress_health_check=list(HealthCheck),
)

PROPERTIES = [
    "heard_never_exceeds_sent",
    "heard_text_is_a_word_prefix_of_generated",
    "heard_never_shrinks",
    "context_agent_turns_are_the_heard_text",
    "context_holds_no_word_the_caller_did_not_hear",
    "events_round_trip_through_the_codec",
]


def _skip(self: CallHistory) -> None:
    return None


def must_fail(property_name: str) -> None:
    """Run the machine with only ``property_name`` checked; it must find the planted bug."""
    others = {name: _skip for name in PROPERTIES if name != property_name}
    if property_name != "folding_a_prefix_then_the_rest_equals_folding_all":
        others["teardown"] = _skip
    only = type(f"Only_{property_name}", (CallHistory,), others)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(only, settings=FIND_IT)


def test_heard_on_the_wrong_axis_breaks_heard_le_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug: heard_ms read as an absolute stream offset, forgetting the turn's start.
    monkeypatch.setattr(
        AgentTurn, "heard_ms", property(lambda t: min(t.heard_end_ms, t.out_end_ms))
    )
    must_fail("heard_never_exceeds_sent")


def test_character_ratio_heard_text_breaks_word_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug (the character-ratio guess some peers make): cut the generated text by heard/sent ratio.
    def ratio_text(turn: AgentTurn) -> str:
        if not turn.sent_ms:
            return ""
        return turn.generated_text[: int(len(turn.generated_text) * turn.heard_ms / turn.sent_ms)]

    monkeypatch.setattr(AgentTurn, "heard_text", property(ratio_text))
    must_fail("heard_text_is_a_word_prefix_of_generated")


def test_trusting_the_clock_over_marks_breaks_monotonic_heard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bug: a truncation overwrites progress that echoed marks had already proven.
    def overwrite(state: heard.Heard, event: Event) -> heard.Heard:
        assert isinstance(event, ReplyTruncated)
        return heard._replace_agent(
            state,
            event.reply_id,
            lambda t: msgspec.structs.replace(
                t, heard_end_ms=(t.out_start_ms or 0.0) + event.heard_ms, interrupted=True
            ),
        )

    monkeypatch.setitem(heard._HANDLERS, ReplyTruncated, overwrite)  # type: ignore[misc]
    must_fail("heard_never_shrinks")


def test_context_from_generated_text_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug (pitfall 1): the LLM context remembers what was generated, not what was heard.
    def generated_context(state: heard.Heard) -> list[context.Message]:
        return [
            context.Message("assistant", t.generated_text, t.interrupted)
            for t in state.agent_turns()
            if t.heard_text or t.interrupted
        ]

    monkeypatch.setattr("tests.projections.call_history.context_messages", generated_context)
    must_fail("context_agent_turns_are_the_heard_text")


def test_state_outside_the_fold_breaks_prefix_composition(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug: a handler keeps a buffer outside the state, so refolding sees stale text.
    buffers: dict[int, list[str]] = {}
    original: Callable[[heard.Heard, Event], heard.Heard] = heard._HANDLERS[ReplyTextGenerated]

    def leaky(state: heard.Heard, event: Event) -> heard.Heard:
        assert isinstance(event, ReplyTextGenerated)
        buffers.setdefault(event.reply_id, []).append(event.text)
        joined = "".join(buffers[event.reply_id])
        return heard._replace_agent(
            original(state, event),
            event.reply_id,
            lambda t: msgspec.structs.replace(t, generated_text=joined),
        )

    monkeypatch.setitem(heard._HANDLERS, ReplyTextGenerated, leaky)  # type: ignore[misc]
    must_fail("folding_a_prefix_then_the_rest_equals_folding_all")


def test_lossy_encoding_breaks_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bug: timestamps rounded to whole ms "to save space".
    exact = codec.encode
    monkeypatch.setattr(
        codec,
        "encode",
        lambda e: exact(msgspec.structs.replace(e, at_ms=float(round(e.at_ms / 2)))),
    )
    must_fail("events_round_trip_through_the_codec")


def test_words_up_to_the_estimate_put_unheard_words_in_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bug: count every word that ended by the clock's point estimate as heard, ignoring its
    # lower bound; an estimate a little late puts a word the caller never heard in context.
    def up_to_the_estimate(turn: AgentTurn) -> HeardWords:
        if turn.out_start_ms is None:
            return HeardWords("", "")
        return heard_words(turn.words, turn.out_start_ms + turn.heard_ms)

    monkeypatch.setattr(AgentTurn, "heard", up_to_the_estimate)
    must_fail("context_holds_no_word_the_caller_did_not_hear")
