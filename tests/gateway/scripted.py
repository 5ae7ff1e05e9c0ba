"""Scripted calls shared by the gateway tests: the caller asks, then talks over the answer."""

from __future__ import annotations

from events.catalogue import (
    AnyEvent,
    AudioSent,
    ClearSent,
    MarkSent,
    ReplyCompleted,
    SpeechSynthesized,
)
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Truth, Utterance
from projections.replay import fold_all
from tests.support.gateway import AUTH_TOKEN, stored_call
from tests.support.voices import spoken


async def ask_then_cut_in(
    base: str,
    app: EarshotApp,
    ask: str,
    cut_in: bytes,
    *,
    seconds: float,
    quiet_ms: float = 500.0,
    cut_in_after_ms: float = 900.0,
) -> tuple[list[AnyEvent], Truth]:
    """Ask once the agent is quiet, then say ``cut_in`` that far into the answer."""
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        hang_up_after_s=seconds,
        script=[
            Utterance(spoken(ask), after_agent_quiet_ms=quiet_ms),
            Utterance(cut_in, cut_in_after_agent_ms=cut_in_after_ms),
        ],
    )
    truth = await caller.run()
    return await stored_call(app, truth.call_sid), truth


def nothing_of_the_reply_after_its_clear(events: list[AnyEvent], reply_id: int) -> None:
    """No audio, mark or synthesized phrase of ``reply_id`` was recorded after its clear."""
    clear = next(e for e in events if isinstance(e, ClearSent) and e.reply_id == reply_id)
    after = [e for e in events if e.seq > clear.seq and getattr(e, "reply_id", None) == reply_id]
    assert not [e for e in after if isinstance(e, AudioSent | SpeechSynthesized | MarkSent)]


def no_empty_completed_reply(events: list[AnyEvent]) -> None:
    """Every reply recorded as completed (not cancelled) has text: an empty one is a failure."""
    turns = {t.reply_id: t for t in fold_all(events).heard.agent_turns()}
    for completed in (e for e in events if isinstance(e, ReplyCompleted)):
        if completed.finish_reason != "cancelled":
            assert turns[completed.reply_id].generated_text.strip(), completed
