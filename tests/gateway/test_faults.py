"""Failures inside a call: every stage made to crash, and every engine made to stall.

A crashed or stalled STT, LLM or TTS is recorded, replaced and apologised for,
and the call goes on; a crashed Transport or CallSupervisor ends the call with a
recorded reason and the gateway closes the stream. Each fault hits one call while
another runs beside it and is unaffected; afterwards no actor, actor thread or
per-call object is left behind.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.call_supervisor import CallSupervisor
from actors.core.call_policy import APOLOGY, TIME_LIMIT_GOODBYE
from actors.core.liveness import FAILED_GOODBYE
from actors.engines.speech_synthesis import Phrase, SpeechEngine
from actors.llm import Llm
from actors.stt import Stt
from actors.transport import Transport
from events.catalogue import AnyEvent, CallEnded, CallerAudioGap, StageFailed, TranscriptFinal
from events.recorder import CallRecorder
from gateway.app import EarshotApp
from gateway.playout import Playout
from gateway.simulate import SimulatedCaller, Truth, Utterance
from projections.heard import AgentTurn
from projections.replay import fold_all
from tests.support.fault_llm import REPLY, FaultInjectingLlm
from tests.support.gateway import AUTH_TOKEN, STAGE_TIMEOUT_S, running_gateway, stored_call

STALL_S = STAGE_TIMEOUT_S + 4.0  # an injected stall: longer than every stage timeout
TIMEOUT_S = STAGE_TIMEOUT_S
CALL_ACTORS = {"CallSupervisor", "Transport", "Tts", "Stt", "Llm"}
PER_CALL_TYPES = (CallSupervisor, Transport, Stt, Llm, CallRecorder, Playout)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    """Greets and listens (no STT or LLM): for faults in the TTS, Transport and supervisor."""
    db = tmp_path_factory.mktemp("faults") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}", converse=False, tts_timeout_s=TIMEOUT_S
    ) as running:
        yield running


def call_threads() -> list[str]:
    """Threads of a call's actors still running (pykka names them after the actor class).

    The event loop's executor threads (``asyncio_N``) are a bounded pool, not a leak.
    """
    return [t.name for t in threading.enumerate() if t.name.split("-")[0] in CALL_ACTORS]


def once(fault: Callable[..., Any]) -> Callable[..., bool]:
    """A predicate true exactly once, across threads: which call meets the fault is chance."""
    lock, left = threading.Lock(), [1]

    def first(*args: Any) -> bool:
        with lock:
            if left[0] and fault(*args):
                left[0] -= 1
                return True
            return False

    return first


async def faulted_and_bystander(
    app: EarshotApp, base: str, script: list[Utterance], seconds: float
) -> tuple[list[AnyEvent], list[AnyEvent], Truth]:
    """Two calls at once, both speaking ``script``; returns (faulted, other, faulted truth)."""
    callers = [
        SimulatedCaller(base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=seconds)
        for _ in range(2)
    ]
    truths = await asyncio.gather(*(c.run() for c in callers))
    calls = [(await stored_call(app, t.call_sid), t) for t in truths]
    faulted = [
        (events, truth)
        for events, truth in calls
        if any(isinstance(e, StageFailed) for e in events)
    ]
    assert len(faulted) == 1, "exactly one call met the injected fault"
    other = next(events for events, truth in calls if truth is not faulted[0][1])
    assert not any(isinstance(e, StageFailed) for e in other)
    assert any(isinstance(e, CallEnded) for e in other)
    return faulted[0][0], other, faulted[0][1]


def agent_turns(events: list[AnyEvent]) -> list[AgentTurn]:
    return fold_all(events).heard.agent_turns()


def failure(events: list[AnyEvent]) -> StageFailed:
    return next(e for e in events if isinstance(e, StageFailed))


def ended(events: list[AnyEvent]) -> str:
    return next(e.reason for e in events if isinstance(e, CallEnded))


def heard_apology(events: list[AnyEvent]) -> bool:
    return any(t.reason == "apology" and t.heard_text == APOLOGY for t in agent_turns(events))


def forget_logged_tracebacks() -> None:
    """pytest keeps each log record of a test, and the record of a crash keeps its traceback,
    whose frames hold the crashed call's objects: the harness holding them, not the gateway.
    The text is kept; only the traceback objects go."""
    for handler in logging.getLogger().handlers:
        for record in getattr(handler, "records", ()):
            if record.exc_info:
                record.exc_text = record.exc_text or logging.Formatter().formatException(
                    record.exc_info
                )
                record.exc_info = None


async def nothing_left(actors_before: int, wait_s: float = 0.0) -> None:
    """No actor, actor thread or per-call object of an ended call survives it."""
    deadline = time.monotonic() + wait_s + 5.0
    while call_threads() and time.monotonic() < deadline:  # a stalled engine call returning
        await asyncio.sleep(0.2)
    assert call_threads() == []
    assert len(pykka.ActorRegistry.get_all()) <= actors_before
    forget_logged_tracebacks()
    gc.collect()
    alive = [type(o).__name__ for o in gc.get_objects() if type(o) in PER_CALL_TYPES]
    assert alive == []


# --- faults in the greeting-only gateway --------------------------------------------------


async def test_a_crashed_tts_is_restarted_and_the_caller_hears_an_apology(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    assert app.services.engines is not None
    engine: SpeechEngine = app.services.engines.tts
    real, fails = engine.synthesize, once(lambda text, speed=1.0: True)

    def synthesize(text: str, speed: float = 1.0, **kwargs: Any) -> Phrase:
        if fails(text):
            raise RuntimeError("injected TTS fault")
        return real(text, speed, **kwargs)

    monkeypatch.setattr(engine, "synthesize", synthesize)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, _ = await faulted_and_bystander(app, base, [], seconds=9.0)
    assert failure(faulted).stage == "tts" and failure(faulted).action == "apologise"
    assert heard_apology(faulted)
    assert agent_turns(other)[0].heard_text == app.settings.agent.greeting  # unaffected
    await nothing_left(actors_before)


async def test_a_stalled_tts_times_out_and_a_fresh_one_apologises(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    assert app.services.engines is not None
    engine: SpeechEngine = app.services.engines.tts
    real, stalls = engine.synthesize, once(lambda text: True)

    def synthesize(text: str, speed: float = 1.0, **kwargs: Any) -> Phrase:
        if stalls(text):
            time.sleep(STALL_S)  # a wedged engine: the actor's thread is stuck in here
        return real(text, speed, **kwargs)

    monkeypatch.setattr(engine, "synthesize", synthesize)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, _ = await faulted_and_bystander(app, base, [], seconds=9.0)
    stalled = failure(faulted)
    assert (stalled.stage, stalled.error) == ("tts", f"timed out after {TIMEOUT_S:.1f} s")
    assert heard_apology(faulted)
    # The stalled greeting's late audio was dropped: the caller heard only the apology.
    assert [t.reason for t in agent_turns(faulted) if t.heard_ms] == ["apology"]
    assert agent_turns(other)[0].heard_text == app.settings.agent.greeting
    await nothing_left(actors_before, wait_s=STALL_S)


async def test_a_crashed_transport_ends_the_call_and_closes_the_stream(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    real = Transport._on_audio
    frames = {"seen": 0}
    crashes = once(lambda transport: frames["seen"] > 100)  # about 2 s into one call

    def on_audio(self: Transport, audio: Any) -> None:
        frames["seen"] += 1
        if crashes(self):
            raise RuntimeError("injected transport fault")
        real(self, audio)

    monkeypatch.setattr(Transport, "_on_audio", on_audio)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, truth = await faulted_and_bystander(app, base, [], seconds=8.0)
    assert failure(faulted).stage == "transport" and failure(faulted).action == "end_call"
    assert ended(faulted) == "transport failed"
    assert truth.close_code == 1000  # the gateway hung up on its side, cleanly
    assert ended(other) == "caller hung up"
    assert agent_turns(other)[0].heard_text == app.settings.agent.greeting
    await nothing_left(actors_before)


async def test_a_crashed_supervisor_ends_the_call_with_its_reason(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    real = CallSupervisor.on_receive
    crashes = once(lambda message: type(message).__name__ == "ReplyPlayed")

    def on_receive(self: CallSupervisor, message: Any) -> Any:
        if crashes(message):
            raise RuntimeError("injected supervisor fault")
        return real(self, message)

    monkeypatch.setattr(CallSupervisor, "on_receive", on_receive)
    actors_before = len(pykka.ActorRegistry.get_all())
    callers = [
        SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=9.0)
        for _ in range(2)
    ]
    truths = await asyncio.gather(*(c.run() for c in callers))
    reasons = sorted([ended(await stored_call(app, t.call_sid)) for t in truths])
    assert reasons == ["caller hung up", "supervisor failed"]
    assert sorted(t.close_code or 0 for t in truths) == [0, 1000]
    await nothing_left(actors_before)


async def test_a_crashed_playout_clears_restarts_and_the_caller_hears_an_apology(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    real = Playout._send_frame
    frames = {"seen": 0}
    crashes = once(lambda playout: frames["seen"] > 60)  # about 1.2 s into one greeting

    async def send_frame(self: Playout, now: float) -> None:
        frames["seen"] += 1
        if crashes(self):
            raise ValueError("injected playout fault")
        await real(self, now)

    monkeypatch.setattr(Playout, "_send_frame", send_frame)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, truth = await faulted_and_bystander(app, base, [], seconds=10.0)
    assert (failure(faulted).stage, failure(faulted).action) == ("playout", "apologise")
    greeting = agent_turns(faulted)[0]
    assert greeting.interrupted and 0 < greeting.heard_ms < 2500  # cut where it stopped
    assert len(truth.clears) == 1  # the phone dropped what it had buffered
    assert heard_apology(faulted)  # the restarted pacer played it in full
    assert ended(faulted) == "caller hung up"
    assert agent_turns(other)[0].heard_text == app.settings.agent.greeting
    await nothing_left(actors_before)


async def test_a_stalled_supervisor_is_noticed_and_the_caller_hears_a_goodbye(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    real = CallSupervisor.on_receive
    stalls = once(lambda message: type(message).__name__ == "ReplyPlayed")  # after the greeting

    def on_receive(self: CallSupervisor, message: Any) -> Any:
        if stalls(message):
            time.sleep(STALL_S)  # a handler stuck: the supervisor's only thread with it
        return real(self, message)

    monkeypatch.setattr(CallSupervisor, "on_receive", on_receive)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, truth = await faulted_and_bystander(app, base, [], seconds=14.0)
    stalled = failure(faulted)
    assert (stalled.stage, stalled.action) == ("supervisor", "end_call")
    goodbye = agent_turns(faulted)[-1]
    assert (goodbye.reason, goodbye.heard_text) == ("goodbye", FAILED_GOODBYE)  # in full
    assert isinstance(faulted[-1], CallEnded) and faulted[-1].reason == "supervisor stalled"
    assert truth.close_code == 1000  # the gateway hung up, after the goodbye
    assert ended(other) == "caller hung up"
    assert agent_turns(other)[0].heard_text == app.settings.agent.greeting
    await nothing_left(actors_before, wait_s=STALL_S)


async def test_many_calls_leave_nothing_behind(gateway: tuple[str, EarshotApp]) -> None:
    """Per-call objects are freed and memory settles: ten calls in, the process grows little."""
    base, _app = gateway
    actors_before = len(pykka.ActorRegistry.get_all())

    def rss_mb() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    sizes = []
    for _ in range(10):
        callers = [
            SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=1.5)
            for _ in range(2)
        ]
        await asyncio.gather(*(c.run() for c in callers))
        await asyncio.sleep(0.3)
        gc.collect()
        sizes.append(rss_mb())
    print(f"RSS after each pair of calls (MB): {[round(s) for s in sizes]}")
    assert sizes[-1] - sizes[2] < 25.0  # warm-up allowed for; per-call growth would add up
    await nothing_left(actors_before)


# --- faults in the talking gateway ------------------------------------------------------


def asking(questions: list[bytes], quiet_ms: float = 500.0) -> list[Utterance]:
    """Each question once the agent has said something and gone quiet for ``quiet_ms``."""
    return [Utterance(q, after_agent_quiet_ms=quiet_ms) for q in questions]


def answered_after_the_fault(events: list[AnyEvent]) -> None:
    """The call went on: a later turn was transcribed and answered, and heard."""
    transcripts = [e for e in events if isinstance(e, TranscriptFinal)]
    assert any("parking" in t.text.lower() for t in transcripts), transcripts
    assert any(t.heard_text == REPLY for t in agent_turns(events)), agent_turns(events)


async def test_a_stalled_stt_times_out_and_the_callers_next_turn_is_answered(
    talking_gateway: tuple[str, EarshotApp],
    questions: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, app = talking_gateway
    assert app.services.engines is not None and app.services.engines.stt is not None
    engine = app.services.engines.stt
    real, stalls = engine.transcribe, once(lambda pcm: True)

    def transcribe(pcm: Any) -> Any:
        if stalls(pcm):
            time.sleep(STALL_S)
        return real(pcm)

    monkeypatch.setattr(engine, "transcribe", transcribe)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, _ = await faulted_and_bystander(app, base, asking(questions), seconds=24.0)
    assert failure(faulted).stage == "stt" and "timed out" in failure(faulted).error
    # The caller heard the filler, and spoke again while the first turn's transcript was
    # stuck: the new Stt transcribes the turn queued behind it, which is answered; no
    # apology talks over it.
    assert failure(faulted).action == "superseded" and not heard_apology(faulted)
    assert [e.turn for e in faulted if isinstance(e, TranscriptFinal)] == [2]
    answered_after_the_fault(faulted)
    answered_after_the_fault(other)
    await nothing_left(actors_before, wait_s=STALL_S)


async def test_a_stalled_llm_is_closed_apologised_for_and_the_next_turn_is_heard(
    talking_gateway: tuple[str, EarshotApp],
    questions: list[bytes],
    llm: FaultInjectingLlm,
) -> None:
    base, app = talking_gateway
    llm.stall_next, closed_before = 1, llm.stalled_requests_closed
    actors_before = len(pykka.ActorRegistry.get_all())
    # A caller who waits out the filler and the holding line (so as not to cut the stalled
    # reply short: that would cancel it, another test's subject).
    script = asking(questions, quiet_ms=3500.0)
    faulted, other, _ = await faulted_and_bystander(app, base, script, seconds=24.0)
    stalled = failure(faulted)
    assert stalled.stage == "llm" and stalled.error == f"timed out: no data for {TIMEOUT_S:.1f} s"
    assert llm.stalled_requests_closed == closed_before + 1  # the request was closed, not left
    assert heard_apology(faulted)
    answered_after_the_fault(faulted)
    answered_after_the_fault(other)
    await nothing_left(actors_before)


@pytest.mark.parametrize(("actor", "stage"), [(Stt, "stt"), (Llm, "llm")])
async def test_a_crashed_stage_is_restarted_and_the_next_turn_is_heard(
    talking_gateway: tuple[str, EarshotApp],
    questions: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    actor: type[Stt] | type[Llm],
    stage: str,
) -> None:
    base, app = talking_gateway
    # The first message that can answer a turn (a rolling partial lost to a crash costs
    # nothing: the turn's own transcript follows). A reply begun at a pause and adopted by
    # the end of turn answers without a message of its own (released from its hold), so
    # whether an answer met the crash would be chance: these calls begin none (a crash on
    # a begun reply, owed no apology: tests/gateway/test_preemptive.py).
    assert app.services.engines is not None
    monkeypatch.setattr(app.services, "engines", replace(app.services.engines, preemptive=False))
    real, crashes = actor.on_receive, once(lambda message: not getattr(message, "rolling", False))

    def on_receive(self: Any, message: Any) -> None:
        if crashes(message):
            raise RuntimeError(f"injected {stage} fault")
        real(self, message)

    monkeypatch.setattr(actor, "on_receive", on_receive)
    actors_before = len(pykka.ActorRegistry.get_all())
    faulted, other, _ = await faulted_and_bystander(app, base, asking(questions), seconds=24.0)
    assert failure(faulted).stage == stage
    assert f"injected {stage} fault" in failure(faulted).error
    assert heard_apology(faulted)
    answered_after_the_fault(faulted)
    answered_after_the_fault(other)
    await nothing_left(actors_before)


async def test_a_stalled_transport_drops_caller_audio_past_its_backlog_counted(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call whose Transport stalls (a wedged VAD, say) does not queue audio without bound:
    past the backlog (5 s) frames are dropped and counted, and the gap is filled with
    silence on the caller's clock, so the call's time axis stays true."""
    base, app = gateway
    real = Transport._on_audio
    frames = {"seen": 0}
    stalls = once(lambda transport: frames["seen"] > 50)

    def on_audio(self: Transport, audio: Any) -> None:
        frames["seen"] += 1
        if stalls(self):
            time.sleep(7.0)
        real(self, audio)

    monkeypatch.setattr(Transport, "_on_audio", on_audio)
    dropped_before = app.services.counters.media_frames_dropped
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=11.0)
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    dropped = app.services.counters.media_frames_dropped - dropped_before
    assert 50 <= dropped <= 150  # ~7 s stalled, 5 s of backlog kept: ~2 s (100 frames) dropped
    gaps = [e for e in events if isinstance(e, CallerAudioGap)]
    assert sum(g.gap_ms for g in gaps) == pytest.approx(dropped * 20.0)
    assert ended(events) == "caller hung up"


async def test_a_call_at_its_time_limit_hears_why_and_is_ended(tmp_path: Path) -> None:
    with running_gateway(
        f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}", converse=False, max_call_s=8.0
    ) as (base, app):
        caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=30.0)
        truth = await caller.run()
        events = await stored_call(app, truth.call_sid)
    assert ended(events) == "call time limit" and truth.close_code == 1000
    goodbye = agent_turns(events)[-1]
    assert (goodbye.reason, goodbye.heard_text) == ("goodbye", TIME_LIMIT_GOODBYE)  # in full
    assert events[-1].at_ms < 8000.0 + 2000.0  # near the limit, not long after
