"""The end of a turn, live (issue 13): a caller who pauses after words that cannot end a
request ("a table for ...") is waited for; the same pause after a sentence that could
end there ends the turn (the word rule cannot hear what comes next). The real VAD and
STT, the gateway's usual 300 ms end of turn; the pause is 700 ms, well past it."""

from __future__ import annotations

from events.catalogue import AnyEvent, ReplyRequested, TranscriptFinal
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from tests.support.gateway import AUTH_TOKEN, stored_call
from tests.support.voices import spoken

PAUSE_MS = 700


async def call(base: str, app: EarshotApp, *parts: str) -> list[AnyEvent]:
    said = Utterance(spoken(*parts, pause_ms=PAUSE_MS), after_agent_quiet_ms=300.0)
    truth = await SimulatedCaller(
        base, auth_token=AUTH_TOKEN, script=[said], linger_s=4.0, hang_up_after_s=25.0
    ).run()
    return await stored_call(app, truth.call_sid)


def finals(events: list[AnyEvent]) -> list[str]:
    return [e.text.lower() for e in events if isinstance(e, TranscriptFinal)]


async def test_a_caller_pausing_mid_sentence_is_waited_for(
    talking_gateway: tuple[str, EarshotApp],
) -> None:
    base, app = talking_gateway
    events = await call(base, app, "I'd like to book a table for", "two people tonight.")
    (whole,) = finals(events)  # one turn: the pause did not end it
    assert "table for" in whole and "tonight" in whole, whole
    answers = [e for e in events if isinstance(e, ReplyRequested) and e.reason == "caller_turn"]
    assert len(answers) == 1


async def test_the_same_pause_after_a_whole_sentence_ends_the_turn(
    talking_gateway: tuple[str, EarshotApp],
) -> None:
    base, app = talking_gateway
    events = await call(base, app, "I'd like to book a table.", "For two people tonight.")
    said = finals(events)
    assert len(said) == 2 and "tonight" not in said[0], said  # cut at the pause
