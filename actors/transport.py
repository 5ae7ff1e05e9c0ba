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
from typing import Any

import pykka

from actors.audio_formats import InboundConverter, phrase_to_mulaw
from actors.messages import (
    CallerSpeech,
    CallerUtterance,
    ClearPlayback,
    InboundFrame,
    PlayoutPort,
    Speak,
    StreamStopped,
)
from actors.speech_turns import CallerAudioLog, SpeechDetector
from actors.supervised import ReportsFailure
from actors.twilio_stream import (
    CallerAudio,
    CloseStream,
    DtmfPressed,
    MarkEchoed,
    Refused,
    Stopped,
    TwilioStreamProtocol,
)
from events.catalogue import CallerAudioGap, DtmfReceived, FrameRefused
from events.recorder import CallRecorder

log = logging.getLogger(__name__)

PRE_ROLL_MS = 200.0  # speech onset is decided a little after it began
POST_ROLL_MS = 150.0


class Transport(ReportsFailure, pykka.ThreadingActor):
    stage = "transport"

    def __init__(
        self,
        protocol: TwilioStreamProtocol,
        recorder: CallRecorder,
        playout: PlayoutPort,
        supervisor: pykka.ActorRef[Any],
        detector: SpeechDetector,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.recorder = recorder
        self.playout = playout
        self.supervisor = supervisor
        self.converter = InboundConverter()
        self.detector = detector
        self.audio_log = CallerAudioLog()
        self.utterance_start_ms: float | None = None
        self.turns = 0
        self.inbound_ms = 0.0
        self.frames_processed = 0

    def on_receive(self, message: Any) -> None:
        if isinstance(message, InboundFrame):
            self._on_frame(message)
        elif isinstance(message, Speak):
            mulaw = phrase_to_mulaw(message.phrase.samples, message.phrase.rate)
            self.playout.enqueue_phrase(
                message.reply_id,
                message.segment,
                message.phrase.text,
                mulaw,
                message.phrase.words,
                message.final,
            )
        elif isinstance(message, ClearPlayback):
            self.playout.clear(message.reply_id)

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
            elif isinstance(observation, Stopped):
                self.supervisor.tell(StreamStopped("caller hung up"))
        self.frames_processed += 1

    def _on_audio(self, audio: CallerAudio) -> None:
        if audio.gap_ms:
            self.recorder.record(
                CallerAudioGap, inbound_ms=self.inbound_ms, gap_ms=float(audio.gap_ms)
            )
            self._detect(self.converter.silence(audio.gap_ms))
            self.inbound_ms += audio.gap_ms
        self._detect(self.converter.convert(audio.payload))
        self.inbound_ms += len(audio.payload) / 8.0

    def _detect(self, pcm16k: Any) -> None:
        self.audio_log.append(pcm16k)
        for edge in self.detector.feed(pcm16k):
            self.supervisor.tell(CallerSpeech(edge.started, edge.inbound_ms))
            if edge.started:
                self.utterance_start_ms = edge.inbound_ms
            elif self.utterance_start_ms is not None:
                self.turns += 1
                start = self.utterance_start_ms - PRE_ROLL_MS
                end = edge.inbound_ms + POST_ROLL_MS
                self.supervisor.tell(
                    CallerUtterance(self.turns, self.audio_log.slice(start, end), start, end)
                )
                self.utterance_start_ms = None
