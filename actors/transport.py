"""The Transport actor: the call's bridge between Twilio's socket and the actor tree.

Inbound: each websocket frame (stamped on the event loop at receipt) is parsed
by the sans-I/O ``TwilioStreamProtocol``; refusals are logged and recorded, never
fatal; caller audio is decoded and resampled once (mu-law 8 kHz -> PCM16 16 kHz),
with timestamp gaps filled by silence; speech edges go to the supervisor.
Outbound: synthesized phrases are converted once (-> 8 kHz mu-law) and handed to
the loop-side playout, which paces them and keeps the playback clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pykka

from actors.audio_retention import CallerAudioRetention
from actors.core.audio_formats import InboundConverter, OutboundStream, phrase_to_mulaw
from actors.core.call_policy import Stage
from actors.core.twilio_stream import (
    CallerAudio,
    CloseStream,
    DtmfPressed,
    MarkEchoed,
    Refused,
    Stopped,
    TwilioStreamProtocol,
)
from actors.messages import (
    CallerResumed,
    CallerSpeech,
    CallerUtterance,
    InboundFrame,
    KeyPressed,
    PlayoutPort,
    Speak,
    SpeakAudio,
    StreamStopped,
)
from actors.speech_detector import CallerAudioLog, SpeechDetector
from actors.supervised import ReportsFailure
from events.catalogue import CallerAudioGap, DtmfReceived, FrameRefused
from events.recorder import CallRecorder

log = logging.getLogger(__name__)

PRE_ROLL_MS = 200.0  # speech onset is decided a little after it began
POST_ROLL_MS = 150.0


BACKLOG_FRAMES = 250  # 5 s of 20 ms frames


@dataclass
class InboundBacklog:
    """Frames handed to the Transport and not yet processed (pykka inboxes are unbounded).

    Beyond ``limit`` the socket side drops caller audio, counted, instead of queueing
    it: a stalled call must not eat the process's memory, and audio seconds late is
    no use to a conversation. The protocol then sees a timestamp jump and fills it
    with silence, so the inbound clock stays true. Marks and control frames are
    never dropped. Each counter has one writer (loop or actor), so no lock is needed.
    """

    limit: int = BACKLOG_FRAMES
    queued: int = 0  # the socket's loop
    processed: int = 0  # the Transport
    dropped: int = 0  # the socket's loop

    def admit(self, frame: str | bytes) -> bool:
        if self.queued - self.processed >= self.limit and _is_media(frame):
            self.dropped += 1
            return False
        self.queued += 1
        return True


def _is_media(frame: str | bytes) -> bool:
    """Twilio puts ``"event":"media"`` first; a cheap look, not a parse (refusals come later)."""
    head = frame[:40]
    return ('"media"' in head) if isinstance(head, str) else (b'"media"' in head)


class Transport(ReportsFailure, pykka.ThreadingActor):
    stage = Stage.TRANSPORT

    def __init__(
        self,
        protocol: TwilioStreamProtocol,
        recorder: CallRecorder,
        playout: PlayoutPort,
        supervisor: pykka.ActorRef[Any],
        detector: SpeechDetector,
        backlog: InboundBacklog,
        retention: CallerAudioRetention | None = None,
        rolling_every_ms: float = 1000.0,
    ) -> None:
        super().__init__()
        self.rolling_every_ms = rolling_every_ms  # 0: no rolling partials
        self.retention = retention  # None: no consent, nothing kept
        self.protocol = protocol
        self.recorder = recorder
        self.playout = playout
        self._outbound: dict[tuple[int, int], OutboundStream] = {}  # phrases streaming in
        self.supervisor = supervisor
        self.converter = InboundConverter()
        self.detector = detector
        self.audio_log = CallerAudioLog()
        self.utterance_start_ms: float | None = None
        self.speculated_end_ms: float | None = None
        self.asked_until_ms = 0.0  # the end of the audio last sent for transcription
        self.turns = 0
        self.inbound_ms = 0.0
        self.backlog = backlog

    def on_stop(self) -> None:
        if self.retention is not None:  # the call ended without Twilio's stop
            self.retention.flush()

    def on_receive(self, message: Any) -> None:
        if isinstance(message, InboundFrame):
            self._on_frame(message)
        elif isinstance(message, SpeakAudio):
            key = (message.reply_id, message.segment)
            stream = self._outbound.setdefault(key, OutboundStream(message.rate))
            mulaw = stream.convert(message.samples)
            if mulaw:
                self.playout.enqueue_audio(message.reply_id, message.segment, mulaw)
        elif isinstance(message, Speak):
            phrase = message.phrase
            if message.streamed:  # its audio went ahead: flush the resampler's tail
                tail = self._outbound.pop((message.reply_id, message.segment), None)
                mulaw = tail.convert(phrase.samples[:0], last=True) if tail else b""
            else:
                mulaw = phrase_to_mulaw(phrase.samples, phrase.rate)
            self.playout.enqueue_phrase(
                message.reply_id,
                message.segment,
                phrase.text,
                mulaw,
                phrase.words,
                message.final,
                streamed=message.streamed,
            )

    def _on_frame(self, frame: InboundFrame) -> None:
        for observation in self.protocol.receive(frame.text, frame.received_at):
            if isinstance(observation, CallerAudio):
                self._on_audio(observation)
            elif isinstance(observation, MarkEchoed):
                self.playout.mark_echoed(observation.name, frame.received_at)
            elif isinstance(observation, Refused):
                log.warning(
                    "call %s: refused frame (%s) %s",
                    self.recorder.call_sid,
                    observation.reason,
                    observation.detail,
                )
                self.recorder.record(
                    FrameRefused,
                    at=frame.received_at,
                    reason=observation.reason,
                    detail=observation.detail,
                )
            elif isinstance(observation, CloseStream):
                log.warning(
                    "call %s: closing stream: %s", self.recorder.call_sid, observation.reason
                )
                self.playout.close(observation.code, observation.reason)
            elif isinstance(observation, DtmfPressed):
                self.recorder.record(DtmfReceived, at=frame.received_at, digit=observation.digit)
                self.report(KeyPressed(observation.digit))
            elif isinstance(observation, Stopped):
                if self.retention is not None:
                    self.retention.flush()
                self.report(StreamStopped("caller hung up"))
        self.backlog.processed += 1

    def _on_audio(self, audio: CallerAudio) -> None:
        if audio.gap_ms:
            self.recorder.record(
                CallerAudioGap, inbound_ms=self.inbound_ms, gap_ms=float(audio.gap_ms)
            )
            self._detect(self.converter.silence(audio.gap_ms))
            self.inbound_ms += audio.gap_ms
        if self.retention is not None:
            self.retention.add(self.inbound_ms, audio.payload)
        self._detect(self.converter.convert(audio.payload))
        self.inbound_ms += len(audio.payload) / 8.0

    def _detect(self, pcm16k: Any) -> None:
        self.audio_log.append(pcm16k)
        for edge in self.detector.feed(pcm16k):
            if edge.resumed:  # within the turn: what began on its pause is moot
                self.report(CallerResumed(edge.inbound_ms))
                self.speculated_end_ms = None
            elif edge.started:
                self.report(CallerSpeech(True, edge.inbound_ms))
                self.utterance_start_ms = self.asked_until_ms = edge.inbound_ms
            elif self.utterance_start_ms is None:
                continue
            elif edge.pause:  # transcribe now; the end of turn may follow in ~250 ms
                self._transcribe(edge.inbound_ms, tentative=True)
                self.speculated_end_ms = edge.inbound_ms
            else:
                self.report(CallerSpeech(False, edge.inbound_ms))
                if self.speculated_end_ms != edge.inbound_ms:  # the caller talked on
                    self._transcribe(edge.inbound_ms, tentative=False)
                self.turns += 1
                self.utterance_start_ms = self.speculated_end_ms = None
        heard_until_ms = self.audio_log.end_ms
        if (
            self.rolling_every_ms
            and self.utterance_start_ms is not None
            and heard_until_ms - self.asked_until_ms >= self.rolling_every_ms
        ):  # a long turn: what has been said so far
            self._transcribe(heard_until_ms, tentative=True, rolling=True)

    def _transcribe(self, speech_end_ms: float, tentative: bool, rolling: bool = False) -> None:
        assert self.utterance_start_ms is not None
        start = self.utterance_start_ms - PRE_ROLL_MS
        end = min(speech_end_ms + POST_ROLL_MS, self.audio_log.end_ms)  # all there is so far
        self.asked_until_ms = speech_end_ms
        self.report(
            CallerUtterance(
                self.turns + 1,
                self.audio_log.slice(start, end),
                start,
                end,
                speech_end_ms,
                tentative,
                rolling,
            )
        )
