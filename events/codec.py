"""Binary encoding of events (msgpack) with each type's version, so old calls still decode.

A stored event is ``(type, schema_version, payload)``, the version being its
type's own (``Event.VERSION``). A payload at its type's current version decodes
straight into the struct. An older one is decoded to plain data, passed through
that type's upcasters one version at a time, then converted. Anything that
cannot be decoded raises ``EventDecodeError`` naming the call and sequence:
nothing is skipped silently. An encrypted payload (``events.encryption``) decodes
with its call's data key; without one (the key was destroyed) it decodes as forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag

from events import encryption
from events.catalogue import EVENT_TYPES, AnyEvent, Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the plain payload of one version into the payload of the next."""

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[AnyEvent] = msgspec.msgpack.Decoder(AnyEvent)
_raw_decoder: msgspec.msgpack.Decoder[dict[str, Any]] = msgspec.msgpack.Decoder(dict[str, Any])


class EventDecodeError(ValueError):
    """A stored event could not be decoded; names the call and sequence it belongs to."""

    def __init__(self, call_sid: str, seq: int, reason: str) -> None:
        super().__init__(f"call {call_sid} event #{seq}: {reason}")
        self.call_sid = call_sid
        self.seq = seq
        self.reason = reason


def register_upcaster(event_type: str, from_version: int, upcaster: Upcaster) -> None:
    """Declare how an ``event_type`` payload at ``from_version`` becomes ``from_version + 1``."""
    _UPCASTERS[(event_type, from_version)] = upcaster


def unregister_upcaster(event_type: str, from_version: int) -> None:
    _UPCASTERS.pop((event_type, from_version), None)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def event_type(event: Event) -> str:
    return type(event).__name__


def version_of(event: Event) -> int:
    """The version its row is stored with: its type's current one."""
    return type(event).VERSION


def decode(
    call_sid: str,
    seq: int,
    type_name: str,
    schema_version: int,
    payload: bytes,
    data_key: bytes | None = None,
) -> AnyEvent:
    """Decode one stored event, checking it against the row it came from.

    ``data_key``: the call's key, for an encrypted payload; None reads it as forgotten."""
    kind = EVENT_TYPES.get(type_name)
    if kind is None:
        raise EventDecodeError(call_sid, seq, f"unknown event type {type_name!r}")
    if schema_version > kind.VERSION or schema_version < 1:
        raise EventDecodeError(
            call_sid,
            seq,
            f"{type_name} schema version {schema_version} is not readable by this build",
        )
    try:
        if encryption.is_encrypted(payload) and data_key is not None:
            data = encryption.decrypt(payload, call_sid, seq, type_name, data_key)
            event = _upcast(type_name, schema_version, kind.VERSION, data)
        elif encryption.is_encrypted(payload):  # its call was forgotten
            public = encryption.public_part(payload)
            event = _upcast(type_name, schema_version, kind.VERSION, _raw_decoder.decode(public))
        elif schema_version == kind.VERSION:
            event = _decoder.decode(payload)
        else:
            event = _upcast(type_name, schema_version, kind.VERSION, _raw_decoder.decode(payload))
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise EventDecodeError(call_sid, seq, f"corrupt {type_name} payload: {exc}") from exc
    except InvalidTag as exc:
        raise EventDecodeError(call_sid, seq, f"{type_name} fails its authentication") from exc
    return _checked(call_sid, seq, type_name, event)


def _checked(call_sid: str, seq: int, type_name: str, event: AnyEvent) -> AnyEvent:
    if type(event).__name__ != type_name:
        raise EventDecodeError(
            call_sid, seq, f"payload is a {type(event).__name__}, row says {type_name}"
        )
    if event.call_sid != call_sid or event.seq != seq:
        raise EventDecodeError(
            call_sid,
            seq,
            f"payload belongs to call {event.call_sid} event #{event.seq}",
        )
    return event


def _upcast(type_name: str, version: int, current: int, data: dict[str, Any]) -> AnyEvent:
    while version < current:
        step = _UPCASTERS.get((type_name, version))
        if step is None:
            raise msgspec.ValidationError(f"no upcaster for {type_name} v{version}")
        data = step(data)
        version += 1
    event: AnyEvent = msgspec.convert(data, AnyEvent)
    return event


# --- the upcasters, one per (type, old version) -------------------------------------------


def _truncation_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """ReplyTruncated v1 also stored the words heard; Heard derives them: dropped."""
    data.pop("heard_text", None)
    data.pop("partial_word", None)
    return data


register_upcaster("ReplyTruncated", 1, _truncation_v1_to_v2)
