"""Gateways shared by the fault and cancellation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from gateway.app import EarshotApp
from tests.support.fault_llm import LONG_REPLY, REPLY, FaultInjectingLlm, fault_injecting_llm
from tests.support.gateway import STAGE_TIMEOUT_S, running_gateway


@pytest.fixture(scope="module")
def llm() -> Iterator[FaultInjectingLlm]:
    with fault_injecting_llm() as server:
        yield server


@pytest.fixture(scope="module")
def talking_gateway(
    tmp_path_factory: pytest.TempPathFactory, llm: FaultInjectingLlm
) -> Iterator[tuple[str, EarshotApp]]:
    """Listens, transcribes and answers (the real STT; an LLM endpoint that can stall)."""
    db = tmp_path_factory.mktemp("faults") / "talking.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}",
        llm_url=llm.url,
        greeting="Hello, how can I help?",
        retain_audio=True,
        stt_timeout_s=STAGE_TIMEOUT_S,
        llm_timeout_s=STAGE_TIMEOUT_S,
        tts_timeout_s=STAGE_TIMEOUT_S,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def questions() -> list[bytes]:
    voice = HibariEngine()
    lines = ("Could I book a table for two tonight?", "And do you have parking?")
    return [phrase_to_mulaw(p.samples, p.rate) for p in map(voice.synthesize, lines)]


@pytest.fixture
def long_reply(llm: FaultInjectingLlm) -> Iterator[FaultInjectingLlm]:
    """The LLM answers with ``LONG_REPLY`` (six sentences), for cuts at known places."""
    llm.reply = LONG_REPLY
    yield llm
    llm.reply, llm.word_delay_s = REPLY, 0.0
