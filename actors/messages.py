"""Messages between a call's actors (plain frozen dataclasses; events are for the record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from actors.core.audio_formats import Float32, Pcm16
from actors.core.call_policy import Stage
from actors.engines.speech_synthesis import Phrase
from events.catalogue import WordTiming


@dataclass(frozen=True)
class InboundFrame:
    """A websocket text frame, stamped with the loop's monotonic time at receipt."""

    text: str | bytes
    received_at: float


@dataclass(frozen=True)
class CallerSpeech:
    started: bool
    inbound_ms: float


@dataclass(frozen=True)
class CallerResumed:
    """The caller spoke again after a pause, within the same turn."""

    inbound_ms: float


@dataclass(frozen=True)
class ModelAction:
    """The model called a built-in action: ``end_call``, or ``transfer_call`` to ``target``
    (a name among the agent's transfer targets)."""

    name: str
    target: str | None = None


@dataclass(frozen=True)
class KeyPressed:
    """The caller pressed a key on their keypad (a Media Streams ``dtmf`` message)."""

    digit: str


@dataclass(frozen=True)
class Synthesize:
    reply_id: int
    segment: int
    text: str
    final: bool = True  # the reply's last phrase


@dataclass(frozen=True)
class Presynthesize:
    """A speculative reply's first phrase, to synthesize now and keep unheard: when the
    turn is confirmed, its ``Synthesize`` finds the audio ready."""

    reply_id: int
    text: str


@dataclass(frozen=True)
class Speak:
    """A phrase to play. ``streamed``: its audio went ahead in ``SpeakAudio`` chunks; this
    closes it, with its words."""

    reply_id: int
    segment: int
    phrase: Phrase
    final: bool = True
    streamed: bool = False


@dataclass(frozen=True)
class SpeakAudio:
    """A chunk of a phrase still being generated (a streaming voice), to play at once."""

    reply_id: int
    segment: int
    samples: Float32
    rate: int


@dataclass(frozen=True)
class CallerUtterance:
    """The caller's audio for one turn (16 kHz PCM, with pre- and post-roll).

    ``tentative`` audio is cut at a pause, before the end of turn is confirmed;
    ``speech_end_ms`` (the VAD's end of speech) tells which end of turn it matches.
    ``rolling`` audio is the turn so far, cut while the caller is still talking: it
    can never be the final transcript, and is transcribed only when the STT is idle.
    """

    turn: int
    pcm: Pcm16
    inbound_start_ms: float
    inbound_end_ms: float
    speech_end_ms: float
    tentative: bool = False
    rolling: bool = False


@dataclass(frozen=True)
class GenerateReply:
    """``held``: a speculative reply (``ReplyHolds``): asked for now, spoken only once the
    turn it answers is confirmed, dropped unheard if the caller goes on. ``must_call``: a
    tool the model must call in it (``actors/core/tool_due.py``)."""

    reply_id: int
    chat: list[dict[str, Any]]
    held: bool = False
    must_call: str | None = None


@dataclass(frozen=True)
class StageError:
    stage: Stage
    reply_id: int | None
    error: str
    crashed: bool = False  # the stage's actor stopped and must be restarted


@dataclass(frozen=True)
class CancelReply:
    reply_id: int


@dataclass(frozen=True)
class ReplyPlayed:
    """The playout heard back the mark after a reply's last audio."""

    reply_id: int


@dataclass(frozen=True)
class Heartbeat:
    """From the gateway's watchdog: handled at once by a supervisor that is not stuck."""


@dataclass(frozen=True)
class Drain:
    """The gateway is shutting down and this call outlasted the drain: say goodbye, end."""


@dataclass(frozen=True)
class CallTimeLimit:
    """The supervisor's own timer: the call is near its length limit."""


@dataclass(frozen=True)
class CheckLiveness:
    """The supervisor's own timer: has the caller heard the agent since their turn ended?"""


@dataclass(frozen=True)
class StreamStopped:
    reason: str


class PlayoutPort(Protocol):
    """The loop-side playout of one call, as the actors may use it (thread-safe)."""

    def enqueue_phrase(
        self,
        reply_id: int,
        segment: int,
        text: str,
        mulaw: bytes,
        words: tuple[WordTiming, ...],
        final: bool = True,
        *,
        streamed: bool = False,
        yielding: bool = False,
    ) -> None:
        """Queue a phrase; ``streamed``: its audio was queued ahead by ``enqueue_audio``, and
        ``mulaw`` is only its tail; ``yielding``: a line that stops at a clause's end once
        another reply's audio is queued (the filler, ``actors.core.phrase_frames``)."""

    def enqueue_audio(self, reply_id: int, segment: int, mulaw: bytes) -> None:
        """Queue audio of a phrase still being generated (whole 20 ms frames)."""

    def clear(self, reply_id: int) -> None: ...

    def mark_echoed(self, name: str, received_at: float) -> None: ...

    def close(self, code: int, reason: str) -> None: ...
