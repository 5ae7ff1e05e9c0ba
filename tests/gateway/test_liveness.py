"""Never dead air: whatever the LLM does, the caller hears the agent soon after their turn.

Each test makes the LLM server fail one way (a stream cut mid-reply, a stream
ended early as llama.cpp's server does, an empty reply, an HTTP 500, a stall, a
reply trickling one word every 3 s) and checks, from the stored events and from
the simulated caller's ear, that the caller heard the retry's answer, or a
holding line and then the fallback, within the bound.
"""

from __future__ import annotations

import pytest

from actors.core.call_policy import APOLOGY
from actors.core.liveness import FALLBACK_LINE, HOLD_LINE
from events.catalogue import (
    AnyEvent,
    AudioSent,
    LineYielded,
    ReplyCompleted,
    SilenceFilled,
    SpeechStopped,
    StageFailed,
)
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Truth, Utterance, played_at, voice_to_voice_ms
from projections.context import INTERRUPTED_MARKER
from projections.heard import AgentTurn
from projections.replay import fold_all
from tests.gateway.scripted import no_empty_completed_reply
from tests.support.fault_llm import REPLY, FaultInjectingLlm
from tests.support.gateway import AUTH_TOKEN, stored_call

BOUND_S = 2.5  # the default liveness bound, which the talking gateway keeps
MARGIN_MS = 400.0  # the watch's timer and the pacer, on a loaded 2-core machine


async def one_question(
    base: str, app: EarshotApp, question: bytes, seconds: float
) -> tuple[list[AnyEvent], Truth]:
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        script=[Utterance(question, after_agent_quiet_ms=500.0)],
        hang_up_after_s=seconds,
    )
    truth = await caller.run()
    return await stored_call(app, truth.call_sid), truth


def answer_turns(events: list[AnyEvent]) -> list[AgentTurn]:
    """The agent's turns after the greeting, but for the filler a late reply may get."""
    turns = fold_all(events).heard.agent_turns()
    return [t for t in turns if t.reason not in ("greeting", "filler")]


def first_audio_after_turn_ms(events: list[AnyEvent]) -> float:
    """From the end of the caller's turn to the first agent audio that went out after it."""
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    sent = next(e for e in events if isinstance(e, AudioSent) and e.seq > stopped.seq)
    return sent.at_ms - stopped.at_ms


@pytest.mark.parametrize("fault", ["cut", "done_early", "empty", "error"])
async def test_a_failed_reply_is_retried_and_the_answer_heard_in_time(
    talking_gateway: tuple[str, EarshotApp],
    questions: list[bytes],
    llm: FaultInjectingLlm,
    fault: str,
) -> None:
    base, app = talking_gateway
    llm.faults = [fault]
    events, truth = await one_question(base, app, questions[0], seconds=12.0)
    latencies = voice_to_voice_ms(truth)
    assert llm.faults == []
    retry = next(e for e in events if isinstance(e, StageFailed))
    assert (retry.stage, retry.action) == ("llm", "retry")
    assert [t.heard_text for t in answer_turns(events)] == [REPLY]
    assert first_audio_after_turn_ms(events) <= BOUND_S * 1000 + MARGIN_MS
    assert latencies and latencies[0] <= BOUND_S * 1000 + 300 + MARGIN_MS  # VAD's 300 ms
    no_empty_completed_reply(events)


async def test_a_reply_failing_twice_gets_the_fallback_in_time(
    talking_gateway: tuple[str, EarshotApp], questions: list[bytes], llm: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    llm.faults = ["error", "empty"]
    events, _ = await one_question(base, app, questions[0], seconds=12.0)
    actions = [(e.stage, e.action) for e in events if isinstance(e, StageFailed)]
    assert actions == [("llm", "retry"), ("llm", "apologise")]
    assert [t.heard_text for t in answer_turns(events)] == ["", APOLOGY]
    assert first_audio_after_turn_ms(events) <= BOUND_S * 1000 + MARGIN_MS
    no_empty_completed_reply(events)


@pytest.mark.parametrize("fault", ["stall", "stall_mid"])
async def test_a_stalled_llm_gets_a_holding_line_within_the_bound(
    talking_gateway: tuple[str, EarshotApp],
    questions: list[bytes],
    llm: FaultInjectingLlm,
    fault: str,
) -> None:
    """The server says nothing, from the start or after three words: at the bound the caller
    hears the holding line; when the LLM's own timeout (``STAGE_TIMEOUT_S``) gives up, the
    request is closed and the caller hears the apology."""
    base, app = talking_gateway
    llm.faults = [fault]
    closed_before = llm.stalled_requests_closed
    events, truth = await one_question(base, app, questions[0], seconds=16.0)
    failed = next(e for e in events if isinstance(e, StageFailed))
    assert (failed.stage, failed.action) == ("llm", "apologise") and "timed out" in failed.error
    assert llm.stalled_requests_closed == closed_before + 1
    fillers = [(e.action, e.waiting_for) for e in events if isinstance(e, SilenceFilled)]
    assert fillers[:2] == [("filler", "reply"), ("hold", "reply")]  # the filler, then the hold
    filled = next(e for e in events if isinstance(e, SilenceFilled) and e.action == "hold")
    assert filled.waited_ms <= BOUND_S * 1000  # heard by the bound
    turns = {t.reason: t for t in fold_all(events).heard.agent_turns()}
    filler_ends = played_at(truth, turns["filler"].words[-1].out_end_ms)
    hold_starts = played_at(truth, turns["hold"].words[0].out_start_ms)
    assert filler_ends is not None and hold_starts is not None
    quiet_ms = (hold_starts - filler_ends) * 1000.0
    assert 150.0 <= quiet_ms <= 600.0  # a pause between sentences, not one that yields the floor
    # queued while the filler's silence was still going out: one run, the phone never dry
    yielded = [(e.reply_id, e.to_reply_id) for e in events if isinstance(e, LineYielded)]
    assert yielded == [(turns["filler"].reply_id, turns["hold"].reply_id)]
    heard = [(t.reason, t.heard_text) for t in answer_turns(events)]
    assert ("hold", HOLD_LINE) in heard and ("apology", APOLOGY) in heard
    assert first_audio_after_turn_ms(events) <= BOUND_S * 1000 + MARGIN_MS


async def test_a_reply_trickling_a_word_every_3_s_is_abandoned_for_the_fallback(
    talking_gateway: tuple[str, EarshotApp], questions: list[bytes], llm: FaultInjectingLlm
) -> None:
    """Tokens keep coming, so no timeout fires; the caller still must not wait: a holding
    line at the bound, and at the give-up point the reply is dropped for the fallback."""
    base, app = talking_gateway
    llm.word_delay_s = 3.0
    try:
        events, _ = await one_question(base, app, questions[0], seconds=19.0)
    finally:
        llm.word_delay_s = 0.0
    filled = [(e.action, e.waiting_for) for e in events if isinstance(e, SilenceFilled)]
    assert filled == [("filler", "reply"), ("hold", "reply"), ("give_up", "reply")]
    heard = [(t.reason, t.heard_text) for t in answer_turns(events)]
    assert heard[-2:] == [("hold", HOLD_LINE), ("fallback", FALLBACK_LINE)]
    abandoned = next(t for t in answer_turns(events) if t.reason == "caller_turn")
    assert abandoned.heard_text == ""
    completed = next(e for e in events if isinstance(e, ReplyCompleted) and e.reply_id == 2)
    assert completed.finish_reason == "cancelled"


async def test_a_copied_marker_is_never_spoken(
    talking_gateway: tuple[str, EarshotApp], questions: list[bytes], llm: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    llm.reply = f"{INTERRUPTED_MARKER} {REPLY}"
    try:
        events, _ = await one_question(base, app, questions[0], seconds=10.0)
    finally:
        llm.reply = REPLY
    assert [t.heard_text for t in answer_turns(events)] == [REPLY]
