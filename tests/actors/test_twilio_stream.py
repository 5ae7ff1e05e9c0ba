"""The sans-I/O Media Streams protocol, frame by frame, exactly as Twilio sends them."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.twilio_stream import (
    CallerAudio,
    CloseStream,
    MarkEchoed,
    Refused,
    Started,
    Stopped,
    TwilioStreamProtocol,
    clear_message,
    mark_message,
    media_message,
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def start(seq: str = "1", token: str = "tok") -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": seq,
            "streamSid": SID,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": SID,
                "callSid": "CA" + "1" * 32,
                "tracks": ["inbound"],
                "customParameters": {"token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def media(seq: int, timestamp: int, payload: bytes = b"\xff" * 160, sid: str = SID) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": sid,
            "media": {
                "track": "inbound",
                "chunk": str(seq - 1),
                "timestamp": str(timestamp),
                "payload": base64.b64encode(payload).decode(),
            },
        }
    )


def started_protocol() -> TwilioStreamProtocol:
    protocol = TwilioStreamProtocol()
    assert protocol.receive('{"event":"connected","protocol":"Call","version":"1.0.0"}', 0.0) == []
    (observation,) = protocol.receive(start(), 0.0)
    assert isinstance(observation, Started) and observation.custom_parameters == {"token": "tok"}
    return protocol


def test_media_marks_and_stop_in_order() -> None:
    protocol = started_protocol()
    (audio,) = protocol.receive(media(2, 0), 0.0)
    assert isinstance(audio, CallerAudio) and audio.payload == b"\xff" * 160 and audio.gap_ms == 0
    mark = {"event": "mark", "sequenceNumber": "3", "streamSid": SID, "mark": {"name": "w1"}}
    assert protocol.receive(json.dumps(mark), 0.0) == [MarkEchoed("w1")]
    stop = {
        "event": "stop",
        "sequenceNumber": "4",
        "streamSid": SID,
        "stop": {"accountSid": "AC1", "callSid": "CA1"},
    }
    assert protocol.receive(json.dumps(stop), 0.0) == [Stopped()]


def test_timestamp_jump_is_reported_as_a_gap() -> None:
    protocol = started_protocol()
    protocol.receive(media(2, 0), 0.0)
    (audio,) = protocol.receive(media(3, 100), 0.0)  # 20 ms expected, 100 arrived: 80 ms lost
    assert isinstance(audio, CallerAudio) and audio.gap_ms == 80


def test_each_kind_of_bad_frame_is_refused_with_its_reason() -> None:
    protocol = started_protocol()
    cases: dict[str, list[str | bytes]] = {
        "malformed": [
            '{"event": "media", ',
            "\udcff not json",
            '{"event": "teleport"}',
            '{"event":"media","sequenceNumber":2}',
        ],
        "wrong_stream": [media(5, 0, sid="MZother")],
        "out_of_order": [media(1, 0)],
        "bad_payload": [media(6, 0).replace(base64.b64encode(b"\xff" * 160).decode(), "!!notb64")],
        "payload_too_large": [media(7, 0, payload=b"\xff" * 4000)],
        "binary_frame": [b"\x00\x01"],
        "frame_too_large": ["x" * 20000],
        "duplicate_start": [start("9")],
    }
    for reason, frames in cases.items():
        for frame in frames:
            observations = protocol.receive(frame, 0.0)
            assert [type(o) for o in observations] == [Refused], (frame[:40], observations)
            assert observations[0].reason == reason, (frame[:40], observations)  # type: ignore[union-attr]
    (audio,) = protocol.receive(media(20, 20), 0.0)  # and the call goes on
    assert isinstance(audio, CallerAudio)


def test_a_burst_of_refusals_closes_with_1008() -> None:
    protocol = started_protocol()
    outputs = [o for n in range(60) for o in protocol.receive("garbage", n * 0.001)]
    closes = [o for o in outputs if isinstance(o, CloseStream)]
    assert closes and closes[0].code == 1008


def test_media_before_start_and_unsupported_format() -> None:
    protocol = TwilioStreamProtocol()
    (refused,) = protocol.receive(media(1, 0), 0.0)
    assert isinstance(refused, Refused) and refused.reason == "before_start"
    wrong = start().replace('"sampleRate": 8000', '"sampleRate": 16000')
    (closed,) = TwilioStreamProtocol().receive(wrong, 0.0)
    assert isinstance(closed, CloseStream) and closed.code == 1003


def test_outbound_messages_are_twilios_shape() -> None:
    assert json.loads(media_message(SID, b"\xff\x7f")) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": "/38="},
    }
    assert json.loads(mark_message(SID, "w3")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "w3"},
    }
    assert json.loads(clear_message(SID)) == {"event": "clear", "streamSid": SID}


@settings(max_examples=300, deadline=None)
@given(
    frame=st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.builds(
            json.dumps,
            st.dictionaries(
                st.sampled_from(["event", "streamSid", "sequenceNumber", "media", "mark", "start"]),
                st.one_of(
                    st.text(max_size=20),
                    st.integers(),
                    st.none(),
                    st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
                ),
            ),
        ),
    )
)
def test_no_frame_crashes_the_protocol(frame: str | bytes) -> None:
    protocol = started_protocol()
    for observation in protocol.receive(frame, 0.0):
        assert isinstance(observation, Refused | CallerAudio | MarkEchoed | Stopped | CloseStream)
