"""An agent interrupted like a person: it stops at once, then listens to what was said.

Each test asks a question, gets the six-sentence ``LONG_REPLY``, and cuts in
about 900 ms into it with the real STT listening:
* "Okay." (a backchannel): the agent pauses, then resumes from the first word
  the caller did not hear, without asking the LLM anything;
* a burst of noise: the reply either plays on or resumes the same way, and the
  caller hears every word of it once;
* "Wait.": the agent acknowledges ("Yes? Go ahead.") without asking the LLM, and
  without repeating what the caller heard.
"""

from __future__ import annotations

import asyncio

import numpy as np

from actors.audio_formats import pcm16_to_mulaw, phrase_to_mulaw
from actors.call_supervisor import ACKNOWLEDGEMENT
from actors.speech_synthesis import HibariEngine
from events.catalogue import AnyEvent, BargeInDetected
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from projections.heard import AgentTurn
from projections.replay import fold_all
from tests.gateway.fault_llm import LONG_REPLY, FaultInjectingLlm
from tests.gateway.server import AUTH_TOKEN, stored_call

ASK = "When are you open?"


def spoken(text: str) -> bytes:
    phrase = HibariEngine().synthesize(text)
    return phrase_to_mulaw(phrase.samples, phrase.rate)


async def ask_then_cut_in(
    base: str, app: EarshotApp, cut_in: bytes, seconds: float
) -> tuple[list[AnyEvent], list[AgentTurn]]:
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        hang_up_after_s=seconds,
        script=[
            Utterance(spoken(ASK), after_agent_quiet_ms=500.0),
            Utterance(cut_in, cut_in_after_agent_ms=900.0),
        ],
    )
    truth = await caller.run()
    await asyncio.sleep(0.5)
    events = await stored_call(app, truth.call_sid)
    return events, fold_all(events).heard.agent_turns()


def heard_across(turns: list[AgentTurn]) -> list[str]:
    """The reply's words as the caller heard them, across the cut and the resumption."""
    return [w for t in turns if t.reason in ("caller_turn", "resume") for w in t.heard_text.split()]


async def test_a_backchannel_pauses_the_agent_which_resumes_from_the_first_unheard_word(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    requests_before = long_reply.requests
    events, turns = await ask_then_cut_in(base, app, spoken("Okay."), seconds=30.0)
    assert any(isinstance(e, BargeInDetected) for e in events)
    cut = next(t for t in turns if t.reason == "caller_turn")
    resumed = next(t for t in turns if t.reason == "resume")
    said = LONG_REPLY.split()
    heard = cut.heard_text.split()
    assert cut.interrupted and 0 < len(heard) < len(said)
    assert resumed.generated_text.split() == said[len(heard) :]  # from the first unheard word
    assert heard_across(turns) == said  # every word heard once: none lost, none repeated
    assert long_reply.requests == requests_before + 1  # "okay" asked the LLM nothing


async def test_a_noise_burst_does_not_lose_or_repeat_a_word(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    rng = np.random.default_rng(7)
    burst = (rng.standard_normal(1200) * 6000).astype(np.int16)  # 150 ms of broadband noise
    requests_before = long_reply.requests
    _events, turns = await ask_then_cut_in(base, app, pcm16_to_mulaw(burst), seconds=30.0)
    assert heard_across(turns) == LONG_REPLY.split()
    assert long_reply.requests == requests_before + 1  # the noise got no answer
    assert not [t for t in turns if t.reason in ("acknowledge", "apology")]


async def test_wait_is_acknowledged_without_repeating_anything(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    requests_before = long_reply.requests
    events, turns = await ask_then_cut_in(base, app, spoken("Wait."), seconds=16.0)
    assert any(isinstance(e, BargeInDetected) for e in events)
    cut = next(t for t in turns if t.reason == "caller_turn")
    assert cut.interrupted
    acknowledged = [t for t in turns if t.reason == "acknowledge"]
    assert [t.heard_text for t in acknowledged] == [ACKNOWLEDGEMENT]
    assert not [t for t in turns if t.reason == "resume"]
    assert long_reply.requests == requests_before + 1
