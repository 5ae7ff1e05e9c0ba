"""The gateway's edges over real sockets: signed webhooks, stream tokens, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import numpy as np
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from actors.audio_formats import phrase_to_mulaw
from actors.speech_synthesis import HibariEngine
from events.catalogue import CallEnded, CallStarted, FrameRefused, SpeechStarted
from gateway.app import EarshotApp
from gateway.simulate import parse_twiml, sign_and_post_webhook
from tests.gateway.server import AUTH_TOKEN, running_gateway, stored_call

PARAMS = {
    "AccountSid": "AC" + "0" * 32,
    "CallSid": "CA" + "7" * 32,
    "From": "+15005550006",
    "To": "+15005550001",
    "CallStatus": "ringing",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("edges") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}", converse=False, refusal_burst=100_000, max_calls=100
    ) as running:
        yield running


def post(base: str, params: dict[str, str], signature: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    request = Request(base + "/twilio/voice", data=urlencode(params).encode(), headers=headers)
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def test_signed_webhook_gets_a_stream_with_a_token(gateway: tuple[str, EarshotApp]) -> None:
    base, _ = gateway
    url, parameters = parse_twiml(sign_and_post_webhook(base, base, AUTH_TOKEN, PARAMS))
    assert url == base.replace("http://", "ws://") + "/twilio/media" and "?" not in url
    assert set(parameters) == {"token"} and len(parameters["token"]) > 40


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_or_wrongly_signed_webhook_is_403(
    gateway: tuple[str, EarshotApp], signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = gateway
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        status, body = post(base, PARAMS, signature)
    assert status == 403 and "Signature" in body
    assert "webhook refused (403)" in caplog.text


def test_signature_for_other_params_or_url_is_403(gateway: tuple[str, EarshotApp]) -> None:
    base, _ = gateway
    good = RequestValidator(AUTH_TOKEN).compute_signature(base + "/twilio/voice", PARAMS)
    assert post(base, {**PARAMS, "From": "+19995550000"}, good)[0] == 403
    other_url = RequestValidator(AUTH_TOKEN).compute_signature(
        "http://evil.example/twilio/voice", PARAMS
    )
    assert post(base, PARAMS, other_url)[0] == 403
    assert post(base, PARAMS, good)[0] == 200


def start_frame(call_sid: str, stream_sid: str, parameters: dict[str, str]) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": PARAMS["AccountSid"],
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def media_frame(stream_sid: str, seq: int, payload: bytes = b"\xff" * 160) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(seq),
                "timestamp": str((seq - 2) * 20),
                "payload": base64.b64encode(payload).decode(),
            },
        }
    )


async def open_stream(base: str, call_sid: str, token: str | None) -> websockets.ClientConnection:
    ws = await websockets.connect(base.replace("http", "ws") + "/twilio/media")
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(start_frame(call_sid, "MZ" + call_sid[2:], {"token": token} if token else {}))
    return ws


def fresh_token(base: str, call_sid: str) -> str:
    twiml = sign_and_post_webhook(base, base, AUTH_TOKEN, {**PARAMS, "CallSid": call_sid})
    return parse_twiml(twiml)[1]["token"]


@pytest.mark.parametrize("case", ["missing", "forged", "other_call", "replayed", "expired"])
async def test_stream_without_a_valid_token_is_closed_before_audio(
    gateway: tuple[str, EarshotApp], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    base, app = gateway
    call_sid = f"CA{case:0>32}"[:34]
    token: str | None = fresh_token(base, call_sid)
    if case == "missing":
        token = None
    elif case == "forged":
        token = token[:-4] + "AAAA"  # type: ignore[index]
    elif case == "other_call":
        token = fresh_token(base, "CA" + "9" * 32)
    elif case == "replayed":
        first = await open_stream(base, call_sid, token)
        await asyncio.sleep(0.5)
        await first.close()
    elif case == "expired":
        app.services.tokens._ttl = -1.0
        token = fresh_token(base, call_sid)
        app.services.tokens._ttl = 30.0
    with caplog.at_level(logging.WARNING, logger="gateway.media_socket"):
        ws = await open_stream(base, call_sid, token)
        await ws.send(media_frame("MZ" + call_sid[2:], 2))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(50):
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "refused" in caplog.text
    # A refused stream stores nothing; the replayed case's first stream ended with its close.
    events = await stored_call(app, call_sid, until=CallEnded if case == "replayed" else None)
    if case == "replayed":  # the first stream ran; the replay added nothing
        assert sum(isinstance(e, CallStarted) for e in events) == 1
    else:
        assert events == []


@functools.cache
def _caller_voice() -> tuple[np.ndarray, int]:
    phrase = HibariEngine().synthesize("Hello, is anybody there? I have a question.")
    return phrase.samples, phrase.rate


hostile = st.one_of(
    st.text(max_size=200),
    st.binary(min_size=1, max_size=200),
    st.builds(lambda n: "x" * n, st.integers(16_385, 40_000)),
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {
                "event": st.sampled_from(["media", "mark", "dtmf", "start", "stop", "nonsense"]),
                "streamSid": st.sampled_from(["MZwrong", ""]),
                "sequenceNumber": st.one_of(st.just("1"), st.text(max_size=5)),
                "media": st.fixed_dictionaries(
                    {
                        "track": st.text(max_size=10),
                        "chunk": st.text(max_size=4),
                        "timestamp": st.text(max_size=6),
                        "payload": st.text(max_size=50),
                    }
                ),
            }
        ),
    ),
)


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(hostile, min_size=1000, max_size=1000))
def test_1000_hostile_frames_refused_while_the_call_and_another_go_on(
    gateway: tuple[str, EarshotApp], frames: list[str | bytes]
) -> None:
    asyncio.run(_hostile_call(gateway, frames))


async def _hostile_call(gateway: tuple[str, EarshotApp], frames: list[str | bytes]) -> None:
    base, app = gateway
    victim, bystander = "CA" + "a" * 32, "CA" + "b" * 32
    victim_ws = await open_stream(base, victim, fresh_token(base, victim))
    other_ws = await open_stream(base, bystander, fresh_token(base, bystander))
    seq = {victim: 2, bystander: 2}
    speech = phrase_to_mulaw(*_caller_voice())

    async def talk(ws: websockets.ClientConnection, call_sid: str) -> None:
        for offset in range(0, len(speech) - 159, 160):
            await ws.send(
                media_frame("MZ" + call_sid[2:], seq[call_sid], speech[offset : offset + 160])
            )
            seq[call_sid] += 1
            await asyncio.sleep(0.02)

    for index, frame in enumerate(frames):
        await victim_ws.send(frame)
        if index % 100 == 0:  # the bystander keeps talking meanwhile
            await other_ws.send(media_frame("MZ" + bystander[2:], seq[bystander]))
            seq[bystander] += 1
    await asyncio.gather(talk(victim_ws, victim), talk(other_ws, bystander))
    await asyncio.sleep(1.0)
    await victim_ws.close()
    await other_ws.close()
    victim_events, other_events = await stored_call(app, victim), await stored_call(app, bystander)
    refused = [e for e in victim_events if isinstance(e, FrameRefused)]
    assert len(refused) == len(frames), "every hostile frame refused and recorded"
    assert any(isinstance(e, SpeechStarted) for e in victim_events), "later valid audio processed"
    assert not [e for e in other_events if isinstance(e, FrameRefused)]
    assert any(isinstance(e, SpeechStarted) for e in other_events), "the other call went on"
