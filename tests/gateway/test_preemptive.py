"""Preemptive generation, live (issue 13): the reply is asked for at the pause that may end
the caller's turn. When the turn does end there, that reply answers it (asked before the
end of turn was confirmed); when the caller pauses and goes on, it is dropped: never
requested as an answer, never synthesized or sent, never heard, never in the Context.

A gateway like the talking one (the real STT, an LLM endpoint that answers ``REPLY``),
whose turns end after 600 ms of silence: a pause of 400 ms is then surely transcribed
before the caller goes on (the STT takes ~0.1 s), yet is not the end of the turn.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.engines.speech_synthesis import Phrase
from actors.llm import Llm
from actors.messages import GenerateReply, Synthesize
from actors.tts import Tts
from events.catalogue import (
    AnyEvent,
    AudioSent,
    ReplyRequested,
    ReplySpeculated,
    ReplyTextGenerated,
    SpeculationDropped,
    SpeechStopped,
    SpeechSynthesized,
    StageFailed,
)
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from projections.context import context_messages
from projections.replay import fold_all
from tests.support.fault_llm import REPLY, FaultInjectingLlm
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call
from tests.support.voices import spoken

END_OF_TURN_MS = 600.0
PAUSE_MS = 400  # past the 64 ms pause and the STT's ~0.1 s on it, short of the end of turn


@pytest.fixture(scope="module")
def patient_gateway(
    tmp_path_factory: pytest.TempPathFactory, llm: FaultInjectingLlm
) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("preemptive") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}", llm_url=llm.url, end_of_turn_ms=END_OF_TURN_MS
    ) as running:
        yield running


async def call(base: str, app: EarshotApp, mulaw: bytes) -> list[AnyEvent]:
    script = [Utterance(mulaw, after_agent_quiet_ms=500.0)]
    truth = await SimulatedCaller(
        base, auth_token=AUTH_TOKEN, script=script, linger_s=4.0, hang_up_after_s=30.0
    ).run()
    return await stored_call(app, truth.call_sid)


def of_reply(events: list[AnyEvent], reply_id: int) -> list[AnyEvent]:
    return [e for e in events if getattr(e, "reply_id", None) == reply_id]


def first_phrases_ready(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(reply, text) of each first phrase whose audio the Tts had synthesized ahead, as
    the Tts found it (the real method, watched)."""
    found: list[tuple[int, str]] = []
    real = Tts._ready

    def ready(self: Tts, message: Synthesize) -> Phrase | None:
        phrase = real(self, message)
        if phrase is not None:
            found.append((message.reply_id, message.text))
        return phrase

    monkeypatch.setattr(Tts, "_ready", ready)
    return found


async def test_a_turn_that_ends_at_its_pause_is_answered_by_the_reply_begun_there(
    patient_gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = patient_gateway
    ready = first_phrases_ready(monkeypatch)
    events = await call(base, app, spoken("Could I book a table for two tonight?"))
    begun = [e for e in events if isinstance(e, ReplySpeculated)]
    assert begun, "no reply was begun at the pause"
    answer = next(e for e in events if isinstance(e, ReplyRequested) and e.reason == "caller_turn")
    assert answer.reply_id == begun[-1].reply_id  # the one begun at the pause answered
    ended = next(e for e in events if isinstance(e, SpeechStopped))
    assert begun[-1].at_ms < ended.at_ms  # asked before the end of turn was confirmed
    assert [e.text for e in events if isinstance(e, ReplyTextGenerated)][-1] != ""
    assert context_messages(fold_all(events).heard)[-1].content == REPLY
    # Its first phrase (the whole short reply) was read and synthesized during the end-of-turn
    # wait, and that audio is what played.
    assert ready == [(answer.reply_id, REPLY)]
    spoken_first = next(
        e for e in events if isinstance(e, SpeechSynthesized) and e.reply_id == answer.reply_id
    )
    assert spoken_first.text == REPLY


async def test_a_caller_who_pauses_and_goes_on_never_hears_the_reply_begun_at_the_pause(
    patient_gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = patient_gateway
    ready = first_phrases_ready(monkeypatch)
    events = await call(
        base, app, spoken("I would like a table.", "For two people, tonight.", pause_ms=PAUSE_MS)
    )
    dropped = [e for e in events if isinstance(e, SpeculationDropped)]
    assert dropped and dropped[0].reason == "the caller went on", dropped
    wasted = dropped[0].reply_id
    # Nothing of it was recorded past its start: no request, text, speech or audio.
    assert [type(e) for e in of_reply(events, wasted)] == [ReplySpeculated, SpeculationDropped]
    assert not [
        e
        for e in of_reply(events, wasted)
        if isinstance(e, ReplyRequested | ReplyTextGenerated | SpeechSynthesized | AudioSent)
    ]
    assert wasted not in [reply_id for reply_id, _ in ready]  # its audio read ahead, unused
    heard = fold_all(events).heard
    assert wasted not in [turn.reply_id for turn in heard.agent_turns()]
    messages = context_messages(heard)
    assert [m.role for m in messages] == ["assistant", "user", "assistant"], messages
    assert "two people" in messages[1].content.lower() and messages[2].content == REPLY


async def test_a_crash_on_the_reply_begun_at_the_pause_costs_the_caller_nothing(
    patient_gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Llm crashes on the begun reply's request: recorded, the Llm restarted, the reply
    dropped; no apology (nothing was owed yet), and the end of turn asks the new Llm."""
    base, app = patient_gateway
    real, crashed = Llm.on_receive, list[int]()

    def on_receive(self: Llm, message: object) -> None:
        if isinstance(message, GenerateReply) and message.held and not crashed:
            crashed.append(message.reply_id)
            raise RuntimeError("injected llm fault")
        real(self, message)

    monkeypatch.setattr(Llm, "on_receive", on_receive)
    events = await call(base, app, spoken("Could I book a table for two tonight?"))
    assert crashed, "no reply was begun at the pause"
    failed = [e for e in events if isinstance(e, StageFailed)]
    assert [(f.stage, f.action, f.reply_id) for f in failed] == [("llm", "dropped", crashed[0])]
    assert "injected llm fault" in failed[0].error
    assert [type(e) for e in of_reply(events, crashed[0])][-1] is SpeculationDropped
    turns = fold_all(events).heard.agent_turns()
    assert "apology" not in [t.reason for t in turns]
    assert turns[-1].heard_text == REPLY and turns[-1].reply_id != crashed[0]
