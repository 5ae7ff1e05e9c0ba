"""The call event catalogue: every fact Earshot records about a call.

Events are frozen ``msgspec`` structs in one tagged union (the tag is the class
name, in the ``type`` field). Every event carries the call it belongs to
(``call_sid``), its position in that call's stream (``seq``, from 1, no gaps)
and ``at_ms``, the call's monotonic clock in milliseconds since the call began.

Two time axes appear in payloads, and they are never mixed:

* ``inbound_ms``: a position in the caller's audio stream (what Twilio sent us).
* ``out_*_ms``: a position in the call's outbound media stream, counting every
  media byte we sent (8 bytes of 8 kHz mu-law = 1 ms), including audio that a
  ``clear`` later discarded. Playback positions are on this axis too.

The events alone reconstruct text and timing; audio bytes are an event only with
the caller's consent (``AudioRetained``). Adding an event type or an optional
trailing field is backwards compatible; any other change to a type bumps that
type's ``VERSION`` and registers an upcaster from the old version in
``events.codec``. Versions are per type, so changing one type never touches the
stored rows of the others.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="type"):
    """Fields every event has; subclasses add their own."""

    VERSION: ClassVar[int] = 1  # of this type's payload, stored with each row
    # What the caller said or keyed, what the agent said to them, their numbers and
    # voice: encrypted at rest under the call's key (events.encryption).
    PRIVATE: ClassVar[tuple[str, ...]] = ()

    call_sid: str
    seq: int
    at_ms: float


class WordTiming(msgspec.Struct, frozen=True, array_like=True):
    """One word of synthesized speech, in ms from the start of its segment's audio."""

    text: str
    start_ms: float
    end_ms: float


# --- call lifecycle -------------------------------------------------------


class CallStarted(Event, frozen=True, kw_only=True):
    PRIVATE: ClassVar[tuple[str, ...]] = ("from_number", "to_number")

    stream_sid: str
    wall_time_unix: float
    account_sid: str = ""
    from_number: str = ""
    to_number: str = ""
    media_encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    recording_consent: bool = False
    gateway: str = ""  # the gateway instance serving the call (events.leases)
    consent_announcement: str = ""  # said before the greeting, when the call is recorded


class CallEnded(Event, frozen=True, kw_only=True):
    reason: str


class CallTransferred(Event, frozen=True, kw_only=True):
    """The call is to be put through to ``target`` (an E.164 number or a SIP URI) once the
    agent's line saying so is heard; the after-stream webhook then answers ``<Dial>``.
    ``reason``: what asked for it ("caller asked", "caller pressed 0")."""

    target: str
    reason: str


class CallRefused(Event, frozen=True, kw_only=True):
    """The webhook turned the call away before it was answered (``reason`` "busy": the
    process was at ``capacity`` with ``in_use`` calls). The call's only event."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("from_number", "to_number")

    reason: str
    in_use: int
    capacity: int
    from_number: str = ""
    to_number: str = ""


class AudioRetained(Event, frozen=True, kw_only=True):
    """Call audio, kept only with the caller's consent (``CallStarted.recording_consent``),
    and only after they heard the announcement (``RecordingStarted``).

    ``track`` "caller": what the caller said, 8 kHz mu-law, placed at ``start_ms`` on
    the inbound axis, in chunks of about a second. ``track`` "agent": one synthesized
    phrase of ``reply_id``, placed at ``start_ms`` on the outbound axis (what was sent,
    not what was heard: the Heard projection cuts it).
    """

    PRIVATE: ClassVar[tuple[str, ...]] = ("mulaw",)

    track: str
    start_ms: float
    mulaw: bytes
    reply_id: int | None = None


# --- the caller's side ----------------------------------------------------


class CallerAudioGap(Event, frozen=True, kw_only=True):
    """Inbound media skipped ahead; the gap was filled with silence."""

    inbound_ms: float
    gap_ms: float


class FrameRefused(Event, frozen=True, kw_only=True):
    """An inbound websocket frame that was refused (malformed, hostile, out of order)."""

    reason: str
    detail: str = ""


class DtmfReceived(Event, frozen=True, kw_only=True):
    PRIVATE: ClassVar[tuple[str, ...]] = ("digit",)

    digit: str


class SpeechStarted(Event, frozen=True, kw_only=True):
    inbound_ms: float


class SpeechStopped(Event, frozen=True, kw_only=True):
    """End of a caller turn, decided by the VAD after its end-of-turn silence."""

    inbound_ms: float
    speech_ms: float


class TranscriptPartial(Event, frozen=True, kw_only=True):
    """A transcript of the caller's turn so far: cut at a pause in speech (a candidate for
    the final transcript), or ``rolling``: taken while the caller was still talking.
    ``inbound_end_ms``: where the audio it covers ends."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("text",)

    turn: int
    text: str
    rolling: bool = False
    inbound_end_ms: float = 0.0


class TranscriptFinal(Event, frozen=True, kw_only=True):
    """A caller turn's text; ``avg_logprob``, ``weakest_token_logprob`` and
    ``compression_ratio``: how sure the recogniser was, ``speech_to_noise_db`` how far the
    voice rose above the line's noise (a turn too unsure, or too noisy, is asked again,
    ``TurnNotAnswered("unclear")``)."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("text",)

    turn: int
    text: str
    inbound_start_ms: float = 0.0
    inbound_end_ms: float = 0.0
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    weakest_token_logprob: float | None = None
    speech_to_noise_db: float | None = None


class TurnNotAnswered(Event, frozen=True, kw_only=True):
    """The caller's last turn needs no reply: ``reason`` "noise" (nothing was said), or
    "listening_only" (the gateway greets and listens, with no STT or LLM; ``turn`` 0)."""

    turn: int
    reason: str


# --- the agent's side -----------------------------------------------------


class ReplyRequested(Event, frozen=True, kw_only=True):
    """An agent turn begins. ``reason``: greeting, caller_turn, acknowledge, resume, apology,
    hold (a holding line while the reply is late), fallback (said instead of a late reply).
    ``must_call``: the tool the model was told to call in it (the caller asked for it and
    said all it needs: ``actors/core/tool_due.py``)."""

    reply_id: int
    reason: str = "caller_turn"
    caller_turn: int | None = None
    must_call: str | None = None


class ReplySpeculated(Event, frozen=True, kw_only=True):
    """At a pause in caller turn ``caller_turn``, reply ``reply_id`` was asked of the model
    as if the turn ended there (preemptive generation). Nothing of it is recorded or
    heard unless the turn ends with that transcript: then ``ReplyRequested`` follows (the
    head start is the time between), else ``SpeculationDropped``."""

    reply_id: int
    caller_turn: int


class SpeculationDropped(Event, frozen=True, kw_only=True):
    """A speculative reply answered nothing (``reason``: the caller went on, the
    transcript changed, the turn was a goodbye...): it was stopped unheard."""

    reply_id: int
    reason: str


class ReplyTextGenerated(Event, frozen=True, kw_only=True):
    """A chunk of LLM output (generated, not necessarily heard)."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("text",)

    reply_id: int
    text: str


class ReplyCompleted(Event, frozen=True, kw_only=True):
    """Generation for a reply ended: stop, length, cancelled or error."""

    reply_id: int
    finish_reason: str


class SpeechSynthesized(Event, frozen=True, kw_only=True):
    """A phrase of the reply, synthesized and queued at ``out_start_ms`` on the outbound stream."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("text", "words")

    reply_id: int
    segment: int
    text: str
    words: tuple[WordTiming, ...]
    audio_ms: float
    out_start_ms: float


class AudioSent(Event, frozen=True, kw_only=True):
    """Outbound media for a reply went into the socket, as a range of the outbound stream."""

    reply_id: int
    out_start_ms: float
    out_end_ms: float


class MarkSent(Event, frozen=True, kw_only=True):
    name: str
    reply_id: int
    out_ms: float


class MarkPlayed(Event, frozen=True, kw_only=True):
    """Twilio echoed a mark before any clear: the outbound stream played up to ``out_ms``."""

    name: str
    reply_id: int
    out_ms: float


class MarkFlushed(Event, frozen=True, kw_only=True):
    """A mark echoed because a clear emptied the buffer: it says nothing about playback."""

    name: str
    reply_id: int
    out_ms: float


class BargeInDetected(Event, frozen=True, kw_only=True):
    reply_id: int
    inbound_ms: float


class ClearSent(Event, frozen=True, kw_only=True):
    """We told Twilio to drop its buffer; ``out_sent_ms`` is how far we had sent."""

    reply_id: int
    out_sent_ms: float


class ReplyTruncated(Event, frozen=True, kw_only=True):
    """Where playback of an interrupted reply stopped, with the clock's uncertainty.

    ``heard_ms`` is measured from the reply's first outbound byte; the true value
    lies in ``[heard_lower_ms, heard_upper_ms]``. Which words were heard is not
    stored: the Heard projection derives it from these bounds and the words'
    timings (``SpeechSynthesized``), one truth per fact. Version 1 also stored
    ``heard_text`` and ``partial_word``; its upcaster drops them.
    """

    VERSION: ClassVar[int] = 2

    reply_id: int
    heard_ms: float
    heard_lower_ms: float
    heard_upper_ms: float


class LineYielded(Event, frozen=True, kw_only=True):
    """A line said while the caller waited (the filler, the holding line) stopped at a word's
    end, after ``kept_ms`` of its audio, because the next line's audio (``to_reply_id``: the
    answer, or the holding line after a filler) was ready:
    the caller hears "Mm," and the answer, not the answer held behind the rest of it. No
    clear is needed (the rest was never sent), so the cut is exact."""

    reply_id: int
    to_reply_id: int
    kept_ms: float


class StageCancelled(Event, frozen=True, kw_only=True):
    """A stage (llm, tts, playout) acknowledged cancellation of a reply."""

    stage: str
    reply_id: int


class StageFailed(Event, frozen=True, kw_only=True):
    """An actor or engine failed or timed out; ``action`` is the supervisor's decision."""

    stage: str
    error: str
    action: str
    reply_id: int | None = None


class SilenceFilled(Event, frozen=True, kw_only=True):
    """The caller waited ``waited_ms`` after their turn without hearing the agent, or
    (``waiting_for`` "more" or "tool") since an answer they had begun to hear went quiet.

    ``action`` "filler": the agent's filler, the reply goes on; "hold": the agent said a
    holding line and the reply goes on; "give_up": the pending reply (``reply_id``, if one
    was asked for) was abandoned and the agent said its fallback line. ``waiting_for``:
    what was late: "transcript", "reply", "more" (the rest of a begun answer), "tool" (a
    tool the answer called).
    """

    action: str
    waiting_for: str
    waited_ms: float
    reply_id: int | None = None


# --- tools --------------------------------------------------------------------------------


class ToolCalled(Event, frozen=True, kw_only=True):
    """The model called tool ``name`` (or a built-in action) while answering ``reply_id``;
    ``arguments`` is the call's JSON object, as text."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("arguments",)

    reply_id: int
    call_id: str
    name: str
    arguments: str


class ToolResult(Event, frozen=True, kw_only=True):
    """The tool answered (``result``: its JSON object, as text) after ``ms``."""

    PRIVATE: ClassVar[tuple[str, ...]] = ("result",)

    reply_id: int
    call_id: str
    name: str
    result: str
    ms: float


class ToolFailed(Event, frozen=True, kw_only=True):
    """The tool did not answer usefully (refused, timed out, answered garbage) after ``ms``;
    the caller heard an apology and the call went on."""

    reply_id: int
    call_id: str
    name: str
    error: str
    ms: float


class CallerSilent(Event, frozen=True, kw_only=True):
    """The floor was the caller's for ``silent_ms`` and they said nothing. ``action``
    "reprompt": the agent asked whether they are still there; "hang_up": it said goodbye
    and the call ends once that is heard."""

    action: str
    silent_ms: float


class RecordingStarted(Event, frozen=True, kw_only=True):
    """The caller has heard the recording ``announcement`` (the greeting's heard words
    cover it): from here on the call's audio is kept (``AudioRetained``), never before."""

    announcement: str


AnyEvent = (
    CallStarted
    | CallEnded
    | CallTransferred
    | CallRefused
    | CallerAudioGap
    | FrameRefused
    | DtmfReceived
    | SpeechStarted
    | SpeechStopped
    | TranscriptPartial
    | TranscriptFinal
    | TurnNotAnswered
    | ReplyRequested
    | ReplySpeculated
    | SpeculationDropped
    | ReplyTextGenerated
    | ReplyCompleted
    | SpeechSynthesized
    | AudioSent
    | MarkSent
    | MarkPlayed
    | MarkFlushed
    | BargeInDetected
    | ClearSent
    | ReplyTruncated
    | LineYielded
    | StageCancelled
    | StageFailed
    | AudioRetained
    | RecordingStarted
    | SilenceFilled
    | CallerSilent
    | ToolCalled
    | ToolResult
    | ToolFailed
)
"""The tagged union every event belongs to."""

EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in AnyEvent.__args__}
