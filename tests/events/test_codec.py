"""Encoding, schema versions and upcasting of stored events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from events import codec
from events.catalogue import (
    EVENT_TYPES,
    AudioRetained,
    ReplyRequested,
    SpeechSynthesized,
    WordTiming,
)
from events.codec import EventDecodeError, decode, encode


def test_every_event_type_has_a_unique_tag() -> None:
    assert len(EVENT_TYPES) == 26
    assert all(cls.__struct_config__.tag == name for name, cls in EVENT_TYPES.items())


def test_nested_word_timings_round_trip() -> None:
    event = SpeechSynthesized(
        call_sid="CA1",
        seq=4,
        at_ms=12.5,
        reply_id=1,
        segment=0,
        text="hi there",
        words=(WordTiming("hi", 0.0, 180.0), WordTiming("there", 200.0, 520.5)),
        audio_ms=600.0,
        out_start_ms=1000.0,
    )
    assert decode("CA1", 4, "SpeechSynthesized", 1, encode(event)) == event


def test_retained_audio_round_trips_as_bytes() -> None:
    event = AudioRetained(
        call_sid="CA1", seq=9, at_ms=3.0, track="caller", start_ms=1000.0, mulaw=bytes(range(256))
    )
    assert decode("CA1", 9, "AudioRetained", 1, encode(event)) == event


def test_future_schema_versions_are_refused() -> None:
    payload = encode(ReplyRequested(call_sid="CA1", seq=2, at_ms=0.0, reply_id=1))
    with pytest.raises(EventDecodeError, match="call CA1 event #2: schema version 9"):
        decode("CA1", 2, "ReplyRequested", 9, payload)


def test_old_payloads_are_upcast(monkeypatch: pytest.MonkeyPatch) -> None:
    """A v1 payload read by a build at v2, where ReplyRequested's ``cause`` became ``reason``."""
    old = msgspec.msgpack.encode(
        {
            "type": "ReplyRequested",
            "call_sid": "CA1",
            "seq": 2,
            "at_ms": 5.0,
            "reply_id": 3,
            "cause": "greeting",
        }
    )

    def rename_cause(data: dict[str, Any]) -> dict[str, Any]:
        data["reason"] = data.pop("cause")
        return data

    monkeypatch.setattr(codec, "CATALOGUE_VERSION", 2)
    with pytest.raises(EventDecodeError, match="no upcaster for ReplyRequested v1"):
        decode("CA1", 2, "ReplyRequested", 1, old)
    codec.register_upcaster("ReplyRequested", 1, rename_cause)
    try:
        event = decode("CA1", 2, "ReplyRequested", 1, old)
    finally:
        codec.unregister_upcaster("ReplyRequested", 1)
    assert event == ReplyRequested(call_sid="CA1", seq=2, at_ms=5.0, reply_id=3, reason="greeting")


def test_invalid_utf8_is_a_decode_error_not_a_crash() -> None:
    payload = encode(ReplyRequested(call_sid="CA1", seq=2, at_ms=0.0, reply_id=1, reason="xx"))
    broken = payload.replace(b"xx", b"\xff\xfe")
    with pytest.raises(EventDecodeError, match="call CA1 event #2: corrupt"):
        decode("CA1", 2, "ReplyRequested", 1, broken)
