"""Callers' words and audio encrypted at rest, one key per call, so a call can be forgotten.

Each event type names its private fields (``Event.PRIVATE``: transcripts, reply text,
numbers, digits, retained audio). When the store has a master key, a row's payload is
the msgpack pair ``[public, ciphertext]``: ``public`` is the event as it reads once
forgotten (private text replaced by ``FORGOTTEN``, audio and word timings emptied), the
ciphertext is the private fields, AES-GCM under the call's own data key, with the row's
identity (call, seq, type) as associated data, so a ciphertext cannot be moved to
another row. The data key is stored wrapped by the master key (RFC 3394 key wrap) in
``call_keys``; destroying it (``earshot forget``) leaves every event and its timing
readable and its content unreadable for good (crypto-shredding).

The nonce is the row's sequence number: each (data key, seq) pair encrypts one event,
and the same event encrypts to the same bytes, so a retried append is recognised as a
repeat. A plain payload (no master key) is the msgpack map of the whole event; the two
are told apart by their first byte (a pair is a fixarray, an event is a map).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from events.catalogue import Event

FORGOTTEN = "[forgotten]"
"""What a private text reads as once its call's key is destroyed."""

KEY_BYTES = 32
_PAIR = 0x92  # msgpack fixarray of two: an encrypted payload

_encoder = msgspec.msgpack.Encoder()
_pair_decoder: msgspec.msgpack.Decoder[tuple[bytes, bytes]] = msgspec.msgpack.Decoder(
    tuple[bytes, bytes]
)
_raw_decoder: msgspec.msgpack.Decoder[dict[str, Any]] = msgspec.msgpack.Decoder(dict[str, Any])


class MasterKeyError(ValueError):
    """``EARSHOT_DATA_KEY`` is not a base64 key of 32 bytes, or it is not the key that
    wrapped the stored data keys."""


def parse_master_key(text: str) -> bytes:
    """A master key from its base64 text (``earshot data-key`` prints a new one)."""
    text = text.strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError("EARSHOT_DATA_KEY is not base64") from exc
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"EARSHOT_DATA_KEY must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


class MasterKey:
    """Wraps and unwraps the per-call data keys."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form (the only form that is stored)."""
        data_key = secrets.token_bytes(KEY_BYTES)
        return data_key, aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap as exc:
            raise MasterKeyError("EARSHOT_DATA_KEY did not wrap this store's data keys") from exc


def private_fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in type(event).PRIVATE}


def forgotten(event: Event) -> Event:
    """The event as it reads without its private fields."""
    blanks: dict[str, Any] = {}
    for name, value in private_fields(event).items():
        if isinstance(value, str):
            blanks[name] = FORGOTTEN if value else ""
        else:
            blanks[name] = type(value)()
    return msgspec.structs.replace(event, **blanks)


def _associated_data(call_sid: str, seq: int, type_name: str) -> bytes:
    return f"{call_sid}\x00{seq}\x00{type_name}".encode()


def _nonce(seq: int) -> bytes:
    return seq.to_bytes(12, "big")


def encrypt(event: Event, data_key: bytes) -> bytes:
    """The row payload of an event with private fields: its public part and its ciphertext."""
    name = type(event).__name__
    plain = _encoder.encode(private_fields(event))
    cipher = AESGCM(data_key).encrypt(
        _nonce(event.seq), plain, _associated_data(event.call_sid, event.seq, name)
    )
    return _encoder.encode((_encoder.encode(forgotten(event)), cipher))


def is_encrypted(payload: bytes) -> bool:
    return bool(payload) and payload[0] == _PAIR


def public_part(payload: bytes) -> bytes:
    return _pair_decoder.decode(payload)[0]


def decrypt(
    payload: bytes, call_sid: str, seq: int, type_name: str, data_key: bytes
) -> dict[str, Any]:
    """The event's plain data (public fields with the private ones put back)."""
    public, cipher = _pair_decoder.decode(payload)
    plain = AESGCM(data_key).decrypt(
        _nonce(seq), cipher, _associated_data(call_sid, seq, type_name)
    )
    data = _raw_decoder.decode(public)
    data.update(_raw_decoder.decode(plain))
    return data
