"""``EARSHOT_TTS_MODEL``: the gateway speaks with Sesame CSM loaded from a local directory.

A tiny random CSM (noise, not speech) stands in for CSM-1B's weights, which no
package ships; the code path is the production one: Services loads the engine,
the Tts actor synthesizes through it, the playout paces it, the caller hears it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.engines.csm_synthesis import CsmEngine
from events.catalogue import AudioSent, SpeechSynthesized
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller
from projections.replay import fold_all
from tests.actors.tiny_csm import save_tiny_csm
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    model = save_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")
    db = tmp_path_factory.mktemp("csm") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}",
        converse=False,
        greeting="Hello there, how can I help you today?",
        tts_model=str(model),
        tts_timeout_s=60.0,
    ) as running:
        yield running


async def test_the_greeting_is_spoken_by_csm_and_heard(gateway: tuple[str, EarshotApp]) -> None:
    base, app = gateway
    assert app.services.engines is not None
    assert isinstance(app.services.engines.tts, CsmEngine)
    # The tiny CSM streams its first audio at once but takes about 8 s to finish the phrase
    # on this CPU (7.9 s measured; a caller hanging up at 8 s missed it on CI).
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=20.0)
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    spoken = [e for e in events if isinstance(e, SpeechSynthesized)]
    assert [e.text for e in spoken] == [app.settings.agent.greeting]
    assert spoken[0].audio_ms > 0 and len(spoken[0].words) == len(
        app.settings.agent.greeting.split()
    )
    # CSM streams: the phrase's first audio went to the caller while the rest of it was still
    # being generated (its record, made when the phrase is whole, comes well after).
    sent = [e for e in events if isinstance(e, AudioSent) and e.reply_id == spoken[0].reply_id]
    assert sent[0].seq < spoken[0].seq and spoken[0].at_ms - sent[0].at_ms > 300, (
        sent[0].at_ms,
        spoken[0].at_ms,
    )
    assert sent[0].out_start_ms == spoken[0].out_start_ms  # recorded where it began
    greeting = fold_all(events).heard.agent_turns()[0]
    assert greeting.heard_ms > 0  # the caller's player played it (and echoed its marks)
    assert truth.played
