"""A barge-in stops the old reply wherever its work is: mid-generation, or mid-synthesis.

The LLM endpoint here streams a known multi-sentence reply at a chosen pace, so
the cut lands where each test needs it: while the reply is still streaming (the
HTTP stream must be closed), or after it has streamed completely while phrases
are still being synthesized (the phrase being synthesized is dropped, the queued
ones are never synthesized). In both: no audio, mark or synthesized phrase of the
old reply after the clear, and the new turn is answered.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import msgspec
import pytest

from actors.core.audio_formats import phrase_to_mulaw
from actors.core.liveness import HOLD_LINE
from actors.engines.speech_synthesis import HibariEngine, Phrase, SpeechEngine
from events.catalogue import (
    AnyEvent,
    BargeInDetected,
    ReplyCompleted,
    ReplyRequested,
    SpeechSynthesized,
    StageCancelled,
)
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from projections import heard as heard_projection
from projections.context import context_messages, to_chat
from projections.replay import fold_all
from tests.gateway.scripted import ask_then_cut_in, nothing_of_the_reply_after_its_clear
from tests.support.fault_llm import LONG_REPLY, FaultInjectingLlm
from tests.support.gateway import AUTH_TOKEN, STAGE_TIMEOUT_S, seen, stored_call
from tests.support.voices import spoken


async def cut_in_call(
    base: str, app: EarshotApp, cut_in_after_ms: float = 600.0
) -> tuple[list[AnyEvent], int]:
    """Ask, then cut in after ``cut_in_after_ms`` of agent audio; returns the call's events
    and the cut reply."""
    events, truth = await ask_then_cut_in(
        base,
        app,
        "When are you open?",
        spoken("Do you have parking?"),
        seconds=22.0,
        cut_in_after_ms=cut_in_after_ms,
    )
    cut = next(e for e in events if isinstance(e, BargeInDetected)).reply_id
    nothing_of_the_reply_after_its_clear(events, cut)
    assert len(truth.clears) == 1
    # The lines said while the caller waits (the filler, the holding line) aside:
    turns = [t for t in fold_all(events).heard.agent_turns() if t.reason not in ("filler", "hold")]
    old = next(t for t in turns if t.reply_id == cut)
    assert old.interrupted and old.heard_text and old.heard_text != LONG_REPLY
    assert turns[-1].reply_id > cut and turns[-1].heard_text.startswith("We open")  # anew
    return events, cut


async def test_a_barge_in_during_generation_closes_the_llm_stream(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    long_reply.word_delay_s = 0.25  # ~8 s to stream: the cut lands mid-stream
    closed_before = long_reply.streams_closed_early
    # So slow a reply starts with the agent's filler, and the holding line may follow it:
    # cut into the answer itself (whatever of those lines played, or yielded to it).
    assert app.services.engines is not None
    lines = app.services.engines.fixed_lines
    waiting_ms = 1000.0 * sum(
        lines.get(line).audio_s for line in (app.settings.agent.filler, HOLD_LINE)
    )
    events, cut = await cut_in_call(base, app, cut_in_after_ms=600.0 + waiting_ms)
    barge = next(e for e in events if isinstance(e, BargeInDetected))
    completed = next(e for e in events if isinstance(e, ReplyCompleted) and e.reply_id == cut)
    assert completed.seq > barge.seq and completed.finish_reason == "cancelled"
    assert any(
        isinstance(e, StageCancelled) and e.stage == "llm" and e.reply_id == cut for e in events
    )
    assert long_reply.streams_closed_early == closed_before + 1  # the server saw it closed


async def test_a_barge_in_during_synthesis_drops_the_phrase_and_skips_the_rest(
    talking_gateway: tuple[str, EarshotApp],
    long_reply: FaultInjectingLlm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, app = talking_gateway
    assert app.services.engines is not None
    engine: SpeechEngine = app.services.engines.tts
    real = engine.synthesize
    started: list[tuple[float, str]] = []  # (when synthesis began, text), reply phrases only
    lock = threading.Lock()

    def slow_synthesize(text: str, speed: float = 1.0, **kwargs: Any) -> Phrase:
        if text in LONG_REPLY:
            with lock:
                started.append((time.monotonic(), text))
                second_phrase = len(started) == 2
            if second_phrase:  # in work until the cut lands (bounded below the TTS timeout)
                deadline = time.monotonic() + STAGE_TIMEOUT_S - 0.5
                while not kwargs["should_stop"]() and time.monotonic() < deadline:
                    time.sleep(0.01)
        return real(text, speed, **kwargs)

    monkeypatch.setattr(engine, "synthesize", slow_synthesize)
    events, cut = await cut_in_call(base, app)
    barge = next(e for e in events if isinstance(e, BargeInDetected))
    completed = next(e for e in events if isinstance(e, ReplyCompleted) and e.reply_id == cut)
    assert completed.seq < barge.seq and completed.finish_reason == "stop"  # LLM long done
    assert any(isinstance(e, StageCancelled) and e.stage == "tts" for e in events)
    spoken = [e.text for e in events if isinstance(e, SpeechSynthesized) and e.reply_id == cut]
    assert spoken == ["We open at noon every day."]
    # Work the engine did before the next reply was requested: the old reply's first phrase,
    # and its second (in synthesis at the cut, then dropped); the four queued behind it were
    # skipped without work. The next reply, begun at the caller's pause, may have had its
    # own first phrase synthesized ahead while its turn was confirmed (the same words).
    t0 = seen(app).origins[events[0].call_sid]
    next_reply = next(e for e in events if isinstance(e, ReplyRequested) and e.reply_id > cut)
    old_work = [text for began, text in started if began < t0 + next_reply.at_ms / 1000]
    assert old_work[:2] == ["We open at noon every day.", "Lunch is served until three."]
    assert old_work[2:] in ([], ["We open at noon every day."]), old_work


async def test_a_stored_call_replays_to_the_live_heard_and_context_byte_for_byte(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    """The Heard the call kept live (and built every LLM context from) equals, as JSON bytes,
    the Heard folded from the stored events: three barge-ins, a truncation each."""
    base, app = talking_gateway
    voice = HibariEngine()
    cut = voice.synthesize("Do you have parking?")  # a request: each cut gets a new reply
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        hang_up_after_s=30.0,
        linger_s=3.0,
        script=[
            Utterance(phrase_to_mulaw(cut.samples, cut.rate), cut_in_after_agent_ms=ms)
            for ms in (900.0, 1400.0, 700.0)
        ],
    )
    truth = await caller.run()
    await asyncio.sleep(1.0)
    events = await stored_call(app, truth.call_sid)
    live = seen(app).live_views[truth.call_sid].state
    replayed = heard_projection.fold_all(events)
    assert sum(t.interrupted for t in replayed.agent_turns()) == 3
    assert msgspec.json.encode(live) == msgspec.json.encode(replayed)
    system = app.settings.agent.system_prompt
    live_context = to_chat(context_messages(live), system)
    assert json.dumps(live_context) == json.dumps(to_chat(context_messages(replayed), system))
