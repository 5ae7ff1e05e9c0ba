"""Failures inside a call: a crashed stage is reported, restarted and apologised for; other
calls go on; no actor or thread of the call is left behind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pykka
import pytest

from actors.call_supervisor import APOLOGY
from actors.speech_synthesis import HibariEngine, Phrase
from events.catalogue import CallEnded, StageFailed
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Truth
from projections.replay import fold_all
from tests.gateway.server import AUTH_TOKEN, running_gateway, stored_call


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("faults") / "calls.db"
    with running_gateway(f"sqlite+aiosqlite:///{db}", converse=False) as running:
        yield running


CALL_ACTORS = {"CallSupervisor", "Transport", "Tts", "Stt", "Llm"}


def call_threads() -> list[str]:
    """Threads of a call's actors still running (pykka names them after the actor class).

    The event loop's executor threads (``asyncio_N``) are a bounded pool, not a leak.
    """
    return [t.name for t in threading.enumerate() if t.name.split("-")[0] in CALL_ACTORS]


async def two_calls(base: str, seconds: float) -> tuple[Truth, Truth]:
    callers = [
        SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=seconds)
        for _ in range(2)
    ]
    first, second = await asyncio.gather(*(c.run() for c in callers))
    return first, second


async def test_a_crashed_tts_is_restarted_and_the_caller_hears_an_apology(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    assert app.services.engines is not None
    engine: HibariEngine = app.services.engines.tts
    real = engine.synthesize
    failures = {"left": 1}
    lock = threading.Lock()

    def fails_once(text: str, speed: float = 1.0) -> Phrase:
        with lock:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("injected TTS fault")
        return real(text, speed)

    monkeypatch.setattr(engine, "synthesize", fails_once)
    actors_before = len(pykka.ActorRegistry.get_all())
    first, second = await two_calls(base, seconds=9.0)
    await asyncio.sleep(1.0)
    views = {}
    for truth in (first, second):
        events = await stored_call(app, truth.call_sid)
        views[truth.call_sid] = (events, fold_all(events).heard.agent_turns())
    failed = [
        sid
        for sid, (events, _) in views.items()
        if any(isinstance(e, StageFailed) and e.stage == "tts" for e in events)
    ]
    assert len(failed) == 1, "exactly one call met the injected fault"
    events, turns = views[failed[0]]
    assert any(t.reason == "apology" and t.heard_text == APOLOGY for t in turns), turns
    other = next(sid for sid in views if sid != failed[0])
    assert views[other][1][0].heard_text == app.settings.greeting  # unaffected
    assert all(any(isinstance(e, CallEnded) for e in evs) for evs, _ in views.values())
    assert len(pykka.ActorRegistry.get_all()) <= actors_before
    assert call_threads() == []
