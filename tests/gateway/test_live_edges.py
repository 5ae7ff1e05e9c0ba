"""The gateway's edges over real sockets: signed webhooks, stream tokens, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import json
import logging
import random
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import numpy as np
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import AudioRetained, CallEnded, CallStarted, FrameRefused, SpeechStarted
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance, parse_twiml, sign_and_post_webhook
from tests.support.gateway import AUTH_TOKEN, running_gateway, stored_call

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
    assert set(parameters) == {"token", "from", "to"} and len(parameters["token"]) > 40
    assert (parameters["from"], parameters["to"]) == (PARAMS["From"], PARAMS["To"])


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


def test_an_oversized_webhook_is_413_and_logged(
    gateway: tuple[str, EarshotApp], caplog: pytest.LogCaptureFixture
) -> None:
    base, app = gateway
    refused_before = app.services.counters.webhooks_refused
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        status, body = post(base, {**PARAMS, "Junk": "x" * 70_000}, "c2lnbmF0dXJl")
    assert (status, body.strip()) == (413, "webhook body too large")
    assert "webhook refused (413)" in caplog.text
    assert app.services.counters.webhooks_refused == refused_before + 1


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urlopen(Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "metrics-secret", "Bearer "])
def test_metrics_need_the_bearer_token(
    gateway: tuple[str, EarshotApp], authorization: str | None
) -> None:
    base, _ = gateway
    headers = {} if authorization is None else {"Authorization": authorization}
    expected = "unauthorized: send the header Authorization: Bearer <EARSHOT_METRICS_TOKEN>\n"
    assert get(base + "/metrics", headers) == (401, expected)
    status, text = get(base + "/metrics", {"Authorization": "Bearer metrics-secret"})
    assert status == 200 and "earshot_calls_active " in text
    assert "earshot_pacer_lateness_ms_count" in text


def test_without_a_metrics_token_the_refusal_says_it_is_unset(
    gateway: tuple[str, EarshotApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app = gateway
    monkeypatch.setattr(app, "settings", dataclasses.replace(app.settings, metrics_token=""))
    status, body = get(base + "/metrics", {"Authorization": "Bearer "})
    assert status == 401 and "EARSHOT_METRICS_TOKEN is not set on this gateway" in body


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/twilio/voice", 405, "POST"),
        ("GET", "/twilio/after", 405, "POST"),
        ("POST", "/metrics", 405, "GET"),
        ("DELETE", "/healthz", 405, "GET"),
        ("GET", "/no/such/page", 404, None),
    ],
)
def test_a_known_path_with_the_wrong_method_is_405_and_says_which(
    gateway: tuple[str, EarshotApp], method: str, path: str, status: int, allow: str | None
) -> None:
    base, _ = gateway
    with pytest.raises(HTTPError) as refused:
        urlopen(Request(base + path, method=method, data=b"" if method != "GET" else None))
    assert refused.value.code == status
    assert refused.value.headers.get("Allow") == allow
    if allow:
        assert refused.value.read().decode() == f"method not allowed: {path} takes {allow}\n"


def test_healthz_reports_calls_and_capacity(gateway: tuple[str, EarshotApp]) -> None:
    base, app = gateway
    status, body = get(base + "/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["capacity"] == app.settings.max_calls == 100
    assert health["calls_active"] == app.services.counters.calls_active


async def test_without_consent_no_call_audio_is_stored(gateway: tuple[str, EarshotApp]) -> None:
    """The operator has not said callers consented (the default): the call's record holds
    text and timing only, no caller or agent audio."""
    base, app = gateway
    assert not app.settings.retain_audio
    caller = SimulatedCaller(
        base,
        auth_token=AUTH_TOKEN,
        script=[Utterance(phrase_to_mulaw(*_caller_voice()), at_s=0.5)],
        hang_up_after_s=4.0,
    )
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    started = next(e for e in events if isinstance(e, CallStarted))
    assert started.recording_consent is False
    assert any(isinstance(e, SpeechStarted) for e in events)  # the caller did speak
    assert not [e for e in events if isinstance(e, AudioRetained)]


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


# Frames on the victim's own stream, each wrong in exactly one way, so that the refusal
# comes from the check it names and not from the stream id (checked first).
DEEP_FAULTS = {
    "wrong_track": {"track": "outbound"},
    "bad_timestamp": {"timestamp": "12ms"},
    "payload_too_large": {"payload": base64.b64encode(b"\xff" * 4000).decode()},
    "bad_payload": {"payload": "not base64!"},
    "empty_payload": {"payload": ""},
}


def deep_frame(fault: str, seq: int, call_sid: str) -> str:
    """A media frame on the call's own stream, next in sequence, with ``fault`` (or a stale
    sequence number for "out_of_order", a second start for "duplicate_start")."""
    stream_sid = "MZ" + call_sid[2:]
    if fault == "duplicate_start":
        return start_frame(call_sid, stream_sid, {})
    media = {
        "track": "inbound",
        "chunk": "1",
        "timestamp": str(seq * 20),
        "payload": base64.b64encode(b"\xff" * 160).decode(),
        **DEEP_FAULTS.get(fault, {}),
    }
    number = 1 if fault == "out_of_order" else seq
    message = {"event": "media", "sequenceNumber": str(number), "streamSid": stream_sid}
    return json.dumps({**message, "media": media})


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
# Deep faults: markers the sender turns into frames with the live sequence number. A fixed
# share of every run, mixed in: one example's draw alone may be all empty strings.
DEEP_MARKERS = [f"deep:{f}" for f in [*DEEP_FAULTS, "out_of_order", "duplicate_start"]] * 25


@settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(drawn=st.lists(hostile, min_size=800, max_size=800), order=st.randoms())
def test_1000_hostile_frames_refused_while_the_call_and_another_go_on(
    gateway: tuple[str, EarshotApp], drawn: list[str | bytes], order: random.Random
) -> None:
    frames = drawn + list(DEEP_MARKERS)
    order.shuffle(frames)
    asyncio.run(_hostile_call(gateway, frames))


async def _hostile_call(gateway: tuple[str, EarshotApp], frames: list[str | bytes]) -> None:
    base, app = gateway
    # Fresh calls each run: Hypothesis may run this more than once (a stored example first).
    victim, bystander = (f"CA{secrets.token_hex(16)}" for _ in range(2))
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

    # The flood starts once the call runs, and is paced a little: a sender far ahead of the
    # call has its media dropped by the bounded inbound backlog (counted, by design), which
    # would hide the deep checks this test is for. Drops still count as handled below.
    await stored_call(app, victim, until=CallStarted)
    dropped_before = app.services.counters.media_frames_dropped
    for index, frame in enumerate(frames):
        await asyncio.sleep(0.001)
        if isinstance(frame, str) and frame.startswith("deep:"):
            fault = frame[5:]
            frame = deep_frame(fault, seq[victim], victim)
            if fault in DEEP_FAULTS:  # its sequence number passed, so it is used up
                seq[victim] += 1
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
    dropped = app.services.counters.media_frames_dropped - dropped_before
    assert len(refused) + dropped == len(frames), "every hostile frame refused (or dropped)"
    assert dropped < len(frames) // 10, dropped
    deep = {f[5:] for f in frames if isinstance(f, str) and f.startswith("deep:")}
    assert deep == {*DEEP_FAULTS, "out_of_order", "duplicate_start"}  # all were tried
    assert deep <= {e.reason for e in refused}, "each refused by the check it names"
    assert any(isinstance(e, SpeechStarted) for e in victim_events), "later valid audio processed"
    assert not [e for e in other_events if isinstance(e, FrameRefused)]
    assert any(isinstance(e, SpeechStarted) for e in other_events), "the other call went on"


async def test_a_burst_of_bad_frames_closes_the_stream_1008_and_spares_the_other_call(
    tmp_path: Path,
) -> None:
    """With the default limit (50 refusals within a second) a hostile stream is closed with
    1008, recorded, while another call on the same gateway goes on."""
    with running_gateway(f"sqlite+aiosqlite:///{tmp_path / 'burst.db'}", converse=False) as (
        base,
        app,
    ):
        assert app.settings.refusal_burst == 50
        victim, bystander = "CA" + "c" * 32, "CA" + "d" * 32
        victim_ws = await open_stream(base, victim, fresh_token(base, victim))
        other_ws = await open_stream(base, bystander, fresh_token(base, bystander))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(200):
                await victim_ws.send("{not json")
                await asyncio.sleep(0.001)
            for _ in range(50):
                await asyncio.wait_for(victim_ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        speech = phrase_to_mulaw(*_caller_voice())
        for seq, offset in enumerate(range(0, len(speech) - 159, 160), start=2):
            frame = speech[offset : offset + 160]
            await other_ws.send(media_frame("MZ" + bystander[2:], seq, frame))
            await asyncio.sleep(0.02)
        await other_ws.close()
        victim_events = await stored_call(app, victim)
        other_events = await stored_call(app, bystander)
    refused = [e for e in victim_events if isinstance(e, FrameRefused)]
    assert 50 <= len(refused) < 200  # closed at the burst, not after every frame
    assert isinstance(victim_events[-1], CallEnded)
    assert any(isinstance(e, SpeechStarted) for e in other_events)
    assert not [e for e in other_events if isinstance(e, FrameRefused)]
