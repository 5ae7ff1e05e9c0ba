"""Twilio Media Streams, sans I/O: text frames in, typed observations out; messages to send.

Messages are decoded straight into msgspec structs exactly as Twilio sends them
(``sequenceNumber``, ``chunk`` and ``timestamp`` are strings; ``payload`` is
base64 mu-law). Anything wrong with a frame (bad JSON or UTF-8, unknown event,
wrong streamSid, out-of-order sequence number, bad or oversized payload, media
before start) becomes a ``Refused`` observation: the caller logs and records it
and the call goes on. A burst of refusals becomes ``CloseStream`` (1008).
Unlike some peers, one malformed frame is never treated as a hang-up.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from dataclasses import dataclass

import msgspec

MAX_FRAME_CHARS = 16_384  # a 20 ms media frame is about 400 characters
MAX_PAYLOAD_BYTES = 1_600  # 200 ms of mu-law in one media message is already generous
REFUSAL_BURST = 50  # this many refusals ...
REFUSAL_WINDOW_S = 1.0  # ... within this window closes the stream


class _Message(msgspec.Struct, frozen=True, tag_field="event", forbid_unknown_fields=False):
    pass


class MediaFormat(msgspec.Struct, frozen=True):
    encoding: str
    sampleRate: int
    channels: int


class StartInfo(msgspec.Struct, frozen=True):
    streamSid: str
    accountSid: str
    callSid: str
    mediaFormat: MediaFormat
    tracks: tuple[str, ...] = ()
    customParameters: dict[str, str] = {}


class MediaInfo(msgspec.Struct, frozen=True):
    track: str
    chunk: str
    timestamp: str
    payload: str


class MarkInfo(msgspec.Struct, frozen=True):
    name: str


class DtmfInfo(msgspec.Struct, frozen=True):
    digit: str
    track: str = "inbound_track"


class StopInfo(msgspec.Struct, frozen=True):
    accountSid: str = ""
    callSid: str = ""


class ConnectedMessage(_Message, frozen=True, tag="connected"):
    protocol: str = "Call"
    version: str = "1.0.0"


class StartMessage(_Message, frozen=True, tag="start"):
    sequenceNumber: str
    start: StartInfo
    streamSid: str


class MediaMessage(_Message, frozen=True, tag="media"):
    sequenceNumber: str
    media: MediaInfo
    streamSid: str


class MarkMessage(_Message, frozen=True, tag="mark"):
    sequenceNumber: str
    streamSid: str
    mark: MarkInfo


class DtmfMessage(_Message, frozen=True, tag="dtmf"):
    sequenceNumber: str
    streamSid: str
    dtmf: DtmfInfo


class StopMessage(_Message, frozen=True, tag="stop"):
    sequenceNumber: str
    streamSid: str
    stop: StopInfo = StopInfo()


InboundMessage = (
    ConnectedMessage | StartMessage | MediaMessage | MarkMessage | DtmfMessage | StopMessage
)
_decoder = msgspec.json.Decoder(InboundMessage)
_encoder = msgspec.json.Encoder()


# --- what a frame means -----------------------------------------------------


@dataclass(frozen=True)
class Started:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str]
    encoding: str
    sample_rate: int


@dataclass(frozen=True)
class CallerAudio:
    """``payload`` is mu-law; ``gap_ms`` of silence were missing before it (a timestamp jump)."""

    payload: bytes
    timestamp_ms: int
    gap_ms: int


@dataclass(frozen=True)
class MarkEchoed:
    name: str


@dataclass(frozen=True)
class DtmfPressed:
    digit: str


@dataclass(frozen=True)
class Stopped:
    pass


@dataclass(frozen=True)
class Refused:
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class CloseStream:
    code: int
    reason: str


Observation = Started | CallerAudio | MarkEchoed | DtmfPressed | Stopped | Refused | CloseStream


class TwilioStreamProtocol:
    """One Media Stream's state: its streamSid, last sequence number, next timestamp."""

    def __init__(self, refusal_burst: int = REFUSAL_BURST) -> None:
        self.refusal_burst = refusal_burst
        self.stream_sid: str | None = None
        self.stopped = False
        self.last_sequence = 0
        self.next_timestamp_ms: int | None = None
        self.refusals = 0
        self._recent_refusals: deque[float] = deque()

    def receive(self, frame: str | bytes, now: float) -> list[Observation]:
        """Interpret one websocket frame received at monotonic time ``now``."""
        if isinstance(frame, bytes):
            return self._refuse(
                "binary_frame", f"{len(frame)} bytes; Media Streams sends text", now
            )
        if len(frame) > MAX_FRAME_CHARS:
            return self._refuse("frame_too_large", f"{len(frame)} characters", now)
        try:
            message = _decoder.decode(frame)
        except (msgspec.DecodeError, UnicodeError) as exc:
            # msgspec.ValidationError subclasses DecodeError; invalid UTF-8 (bytes) and lone
            # surrogates (str) raise UnicodeDecodeError / UnicodeEncodeError instead.
            return self._refuse("malformed", str(exc)[:200], now)
        return self._handle(message, now)

    def _handle(self, message: InboundMessage, now: float) -> list[Observation]:
        if isinstance(message, ConnectedMessage):
            return []
        if self.stopped:
            return self._refuse("after_stop", type(message).__name__, now)
        if isinstance(message, StartMessage):
            return self._on_start(message, now)
        if self.stream_sid is None:
            return self._refuse("before_start", type(message).__name__, now)
        if message.streamSid != self.stream_sid:
            return self._refuse("wrong_stream", message.streamSid[:64], now)
        if not self._sequence_ok(message.sequenceNumber):
            return self._refuse(
                "out_of_order", f"{message.sequenceNumber[:20]} after {self.last_sequence}", now
            )
        if isinstance(message, MediaMessage):
            return self._on_media(message, now)
        if isinstance(message, MarkMessage):
            return [MarkEchoed(message.mark.name)]
        if isinstance(message, DtmfMessage):
            return [DtmfPressed(message.dtmf.digit)]
        self.stopped = True
        return [Stopped()]

    def _on_start(self, message: StartMessage, now: float) -> list[Observation]:
        if self.stream_sid is not None:
            return self._refuse("duplicate_start", message.streamSid[:64], now)
        info = message.start
        if message.streamSid != info.streamSid:
            return self._refuse("wrong_stream", "start.streamSid differs from streamSid", now)
        fmt = info.mediaFormat
        if (fmt.encoding, fmt.sampleRate, fmt.channels) != ("audio/x-mulaw", 8000, 1):
            return [CloseStream(1003, f"unsupported media format {fmt.encoding}/{fmt.sampleRate}")]
        if not self._sequence_ok(message.sequenceNumber):
            return self._refuse("out_of_order", message.sequenceNumber[:20], now)
        self.stream_sid = info.streamSid
        return [
            Started(
                info.streamSid,
                info.callSid,
                info.accountSid,
                dict(info.customParameters),
                fmt.encoding,
                fmt.sampleRate,
            )
        ]

    def _on_media(self, message: MediaMessage, now: float) -> list[Observation]:
        media = message.media
        if media.track not in ("inbound", "inbound_track"):
            return self._refuse("wrong_track", media.track[:32], now)
        if not media.timestamp.isdigit():
            return self._refuse("bad_timestamp", media.timestamp[:32], now)
        if len(media.payload) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
            return self._refuse("payload_too_large", f"{len(media.payload)} base64 characters", now)
        try:
            payload = base64.b64decode(media.payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            return self._refuse("bad_payload", str(exc)[:200], now)
        if not payload:
            return self._refuse("empty_payload", "", now)
        timestamp = int(media.timestamp)
        gap = 0
        if self.next_timestamp_ms is not None and timestamp > self.next_timestamp_ms:
            gap = timestamp - self.next_timestamp_ms
        self.next_timestamp_ms = timestamp + len(payload) // 8
        return [CallerAudio(payload, timestamp, gap)]

    def _sequence_ok(self, sequence: str) -> bool:
        if not sequence.isdigit() or len(sequence) > 12:
            return False
        number = int(sequence)
        if number <= self.last_sequence:
            return False
        self.last_sequence = number
        return True

    def _refuse(self, reason: str, detail: str, now: float) -> list[Observation]:
        self.refusals += 1
        recent = self._recent_refusals
        recent.append(now)
        while recent and recent[0] < now - REFUSAL_WINDOW_S:
            recent.popleft()
        refused: list[Observation] = [Refused(reason, detail)]
        if len(recent) >= self.refusal_burst:
            refused.append(CloseStream(1008, f"{len(recent)} invalid frames within a second"))
        return refused


# --- what we send -------------------------------------------------------------


def media_message(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return _encoder.encode(
        {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
    ).decode()


def mark_message(stream_sid: str, name: str) -> str:
    if not name:
        raise ValueError("a mark needs a name (Twilio error 31924)")
    return _encoder.encode(
        {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}
    ).decode()


def clear_message(stream_sid: str) -> str:
    return _encoder.encode({"event": "clear", "streamSid": stream_sid}).decode()
