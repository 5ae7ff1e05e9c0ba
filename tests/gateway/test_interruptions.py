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

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from actors.core.audio_formats import pcm16_to_mulaw
from actors.core.call_policy import ACKNOWLEDGEMENT
from events.catalogue import AnyEvent, BargeInDetected
from gateway.app import EarshotApp
from gateway.simulate import Truth
from projections.heard import AgentTurn
from projections.replay import fold_all
from tests.gateway.scripted import ask_then_cut_in
from tests.support.fault_llm import LONG_REPLY, FaultInjectingLlm
from tests.support.gateway import DATA_KEY_ENV, seen
from tests.support.voices import spoken

ASK = "When are you open?"


async def ask_then_cut_in_at_900_ms(
    base: str, app: EarshotApp, cut_in: bytes, seconds: float
) -> tuple[list[AnyEvent], list[AgentTurn], Truth]:
    events, truth = await ask_then_cut_in(base, app, ASK, cut_in, seconds=seconds)
    return events, fold_all(events).heard.agent_turns(), truth


def heard_across(turns: list[AgentTurn]) -> list[str]:
    """The reply's words as the caller heard them, across the cut and the resumption."""
    return [w for t in turns if t.reason in ("caller_turn", "resume") for w in t.heard_text.split()]


async def test_a_backchannel_pauses_the_agent_which_resumes_from_the_first_unheard_word(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm, tmp_path: Path
) -> None:
    base, app = talking_gateway
    requests_before = long_reply.requests
    events, turns, truth = await ask_then_cut_in_at_900_ms(base, app, spoken("Okay."), seconds=30.0)
    assert any(isinstance(e, BargeInDetected) for e in events)
    cut = next(t for t in turns if t.reason == "caller_turn")
    resumed = next(t for t in turns if t.reason == "resume")
    said = LONG_REPLY.split()
    heard = cut.heard_text.split()
    assert cut.interrupted and 0 < len(heard) < len(said)
    assert resumed.generated_text.split() == said[len(heard) :]  # from the first unheard word
    assert heard_across(turns) == said  # every word heard once: none lost, none repeated
    assert long_reply.requests == requests_before + 1  # "okay" asked the LLM nothing
    check_replayed_audio(app, truth, turns, tmp_path / "heard.wav")


def check_replayed_audio(app: EarshotApp, truth: Truth, turns: list[AgentTurn], wav: Path) -> None:
    """`earshot replay --audio` (the gateway kept audio: consent is configured): the left
    channel has the caller's voice where they spoke, the right the agent as heard, silent
    while the caller said "okay" (the agent had paused), and as long as the heard audio."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--db", app.settings.db_url, "replay",
         truth.call_sid, "--audio", str(wav)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **DATA_KEY_ENV},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with wave.open(str(wav)) as audio:
        assert (audio.getnchannels(), audio.getframerate()) == (2, 8000)
        frames = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").reshape(-1, 2)
    origin = seen(app).origins[truth.call_sid]

    def loud(channel: int, start_s: float, end_s: float) -> float:
        """Share of 20 ms blocks in [start, end) (caller's clock) that carry sound."""
        first, last = (int((t - origin) * 8000) // 160 for t in (start_s, end_s))
        blocks = [frames[b * 160 : b * 160 + 160, channel] for b in range(first, last)]
        return sum(float(np.abs(b).max(initial=0)) > 300 for b in blocks) / max(len(blocks), 1)

    for onset, end in truth.speech:
        assert loud(0, onset + 0.05, end - 0.05) > 0.6  # the caller's voice, in place
    okay_onset, okay_end = truth.speech[-1]
    assert loud(1, okay_onset + 0.25, okay_end) == 0.0  # the agent paused for "okay"
    heard_s = sum(t.heard_ms for t in turns) / 1000
    agent = frames[: len(frames) // 160 * 160, 1].reshape(-1, 160)
    agent_s = sum(float(np.abs(block).max()) > 0 for block in agent) * 0.02
    assert 0.7 * heard_s <= agent_s <= heard_s + 0.1  # (quiet gaps in speech may decode to 0)


async def test_a_noise_burst_does_not_even_pause_the_agent(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    """150 ms of broadband noise over the agent is not speech: no barge-in, no clear, every
    word heard once. (Resuming after something that did pause the agent is the backchannel
    test above; that a noise, once transcribed, resumes is ``interruption_kind``'s test.)"""
    base, app = talking_gateway
    rng = np.random.default_rng(7)
    burst = (rng.standard_normal(1200) * 6000).astype(np.int16)  # 150 ms of broadband noise
    requests_before = long_reply.requests
    events, turns, truth = await ask_then_cut_in_at_900_ms(
        base, app, pcm16_to_mulaw(burst), seconds=30.0
    )
    assert not [e for e in events if isinstance(e, BargeInDetected)]
    assert truth.clears == []
    assert heard_across(turns) == LONG_REPLY.split()
    assert long_reply.requests == requests_before + 1  # the noise got no answer
    assert not [t for t in turns if t.reason in ("acknowledge", "apology")]


async def test_wait_is_acknowledged_without_repeating_anything(
    talking_gateway: tuple[str, EarshotApp], long_reply: FaultInjectingLlm
) -> None:
    base, app = talking_gateway
    requests_before = long_reply.requests
    events, turns, _truth = await ask_then_cut_in_at_900_ms(
        base, app, spoken("Wait."), seconds=16.0
    )
    assert any(isinstance(e, BargeInDetected) for e in events)
    cut = next(t for t in turns if t.reason == "caller_turn")
    assert cut.interrupted
    acknowledged = [t for t in turns if t.reason == "acknowledge"]
    assert [t.heard_text for t in acknowledged] == [ACKNOWLEDGEMENT]
    assert not [t for t in turns if t.reason == "resume"]
    assert long_reply.requests == requests_before + 1
