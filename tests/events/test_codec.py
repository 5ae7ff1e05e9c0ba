"""Encoding, schema versions and upcasting of stored events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from events import codec
from events.catalogue import (
    EVENT_TYPES,
    AudioRetained,
    Event,
    ReplyRequested,
    ReplyTruncated,
    SpeechSynthesized,
    WordTiming,
)
from events.codec import EventDecodeError, decode, encode


def test_every_event_type_has_a_unique_tag() -> None:
    assert len(EVENT_TYPES) == 35
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


def sample(kind: type[Event], seq: int) -> Event:
    """An instance of ``kind`` with a plain value in every field."""
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(kind):
        if field.name in ("call_sid", "seq", "at_ms"):
            continue
        annotation = str(field.type)
        if "WordTiming" in annotation:
            values[field.name] = (WordTiming("hi", 0.0, 180.0),)
        elif field.type is bytes:
            values[field.name] = b"\xff\x7f"
        elif field.type is bool:
            values[field.name] = True
        elif field.type is float:
            values[field.name] = 12.5
        elif field.type is str or annotation == "str | None":
            values[field.name] = "text"
        else:  # int, int | None
            values[field.name] = 3
    return kind(call_sid="CA1", seq=seq, at_ms=float(seq), **values)


def test_every_type_decodes_at_its_own_version() -> None:
    for seq, (name, kind) in enumerate(sorted(EVENT_TYPES.items()), start=1):
        event = sample(kind, seq)
        assert decode("CA1", seq, name, kind.VERSION, encode(event)) == event


def test_a_second_version_of_one_type_leaves_every_other_types_rows_readable() -> None:
    """ReplyTruncated is at version 2 (v1 also stored the words heard, which Heard derives);
    every other type is still at version 1, and its v1 rows decode unchanged."""
    assert ReplyTruncated.VERSION == 2
    assert {name for name, kind in EVENT_TYPES.items() if kind.VERSION != 1} == {"ReplyTruncated"}
    old = msgspec.msgpack.encode(
        {
            "type": "ReplyTruncated",
            "call_sid": "CA1",
            "seq": 7,
            "at_ms": 5.0,
            "reply_id": 2,
            "heard_ms": 900.0,
            "heard_lower_ms": 885.0,
            "heard_upper_ms": 915.0,
            "heard_text": "Hello, thanks",
            "partial_word": "for",
        }
    )
    now = ReplyTruncated(
        call_sid="CA1",
        seq=7,
        at_ms=5.0,
        reply_id=2,
        heard_ms=900.0,
        heard_lower_ms=885.0,
        heard_upper_ms=915.0,
    )
    assert decode("CA1", 7, "ReplyTruncated", 1, old) == now  # an old row, upcast
    assert decode("CA1", 7, "ReplyTruncated", 2, encode(now)) == now  # a new row
    for seq, (name, kind) in enumerate(sorted(EVENT_TYPES.items()), start=1):
        if name != "ReplyTruncated":
            event = sample(kind, seq)
            assert decode("CA1", seq, name, 1, encode(event)) == event  # old rows of all types


def test_a_missing_upcaster_names_the_type_and_version() -> None:
    old = msgspec.msgpack.encode(
        {"type": "ReplyTruncated", "call_sid": "CA1", "seq": 2, "at_ms": 0.0, "reply_id": 1}
    )
    step = codec._UPCASTERS.pop(("ReplyTruncated", 1))
    try:
        with pytest.raises(EventDecodeError, match="no upcaster for ReplyTruncated v1"):
            decode("CA1", 2, "ReplyTruncated", 1, old)
    finally:
        codec.register_upcaster("ReplyTruncated", 1, step)


def test_future_schema_versions_are_refused_per_type() -> None:
    payload = encode(ReplyRequested(call_sid="CA1", seq=2, at_ms=0.0, reply_id=1))
    with pytest.raises(EventDecodeError, match="#2: ReplyRequested schema version 2"):
        decode("CA1", 2, "ReplyRequested", 2, payload)
    with pytest.raises(EventDecodeError, match="ReplyTruncated schema version 3"):
        decode("CA1", 2, "ReplyTruncated", 3, payload)


def test_invalid_utf8_is_a_decode_error_not_a_crash() -> None:
    payload = encode(ReplyRequested(call_sid="CA1", seq=2, at_ms=0.0, reply_id=1, reason="xx"))
    broken = payload.replace(b"xx", b"\xff\xfe")
    with pytest.raises(EventDecodeError, match="call CA1 event #2: corrupt"):
        decode("CA1", 2, "ReplyRequested", 1, broken)
