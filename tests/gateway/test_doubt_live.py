"""Doubt on a live call (issue 12): a caller in street noise is asked to say it again, and
told why; the same words on a clear line are answered. The real VAD and STT, the
gateway's own decision, the events as recorded."""

from __future__ import annotations

import pytest

from actors.core.doubt import CLARIFY_NOISY, NOISY_BELOW_DB
from events.catalogue import AnyEvent, TranscriptFinal, TurnNotAnswered
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from projections.replay import fold_all
from tests.support.degraded import caller_mulaw
from tests.support.fault_llm import REPLY
from tests.support.gateway import AUTH_TOKEN, stored_call

ASKED = "Could I book a table for two tonight?"


async def call(base: str, app: EarshotApp, condition: str) -> list[AnyEvent]:
    said = Utterance(caller_mulaw("hibari", ASKED, condition), after_agent_quiet_ms=300.0)
    truth = await SimulatedCaller(
        base, auth_token=AUTH_TOKEN, script=[said], linger_s=5.0, hang_up_after_s=20.0
    ).run()
    return await stored_call(app, truth.call_sid)


@pytest.mark.parametrize("condition", ["noisy 0 dB", "clear"])
async def test_a_caller_in_street_noise_is_asked_to_say_it_again(
    talking_gateway: tuple[str, EarshotApp], condition: str
) -> None:
    base, app = talking_gateway
    events = await call(base, app, condition)
    final = next(e for e in events if isinstance(e, TranscriptFinal))
    assert final.speech_to_noise_db is not None
    replies = [t.heard_text for t in fold_all(events).heard.agent_turns()[1:]]
    if condition == "clear":
        assert final.speech_to_noise_db > 2 * NOISY_BELOW_DB  # 35–40 dB measured
        assert replies == [REPLY] and not any(isinstance(e, TurnNotAnswered) for e in events)
    else:
        assert final.speech_to_noise_db < NOISY_BELOW_DB
        unclear = [e for e in events if isinstance(e, TurnNotAnswered)]
        assert [(e.turn, e.reason) for e in unclear] == [(final.turn, "unclear")]
        assert replies == [CLARIFY_NOISY]  # heard in full; never the model's answer
