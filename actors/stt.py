"""The Stt actor: transcribes each caller utterance the VAD delimited, for its supervisor."""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.messages import CallerUtterance, StageError, Transcribed
from actors.speech_recognition import WhisperEngine
from actors.supervised import ReportsFailure

log = logging.getLogger(__name__)


class Stt(ReportsFailure, pykka.ThreadingActor):
    stage = "stt"

    def __init__(self, engine: WhisperEngine, supervisor: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.engine = engine
        self.supervisor = supervisor

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, CallerUtterance):
            return
        try:
            transcript = self.engine.transcribe(message.pcm)
        except Exception as exc:  # reported, never a silent actor death
            log.exception("transcription failed")
            self.supervisor.tell(StageError("stt", None, repr(exc)))
            return
        self.supervisor.tell(
            Transcribed(
                message.turn,
                transcript.text,
                transcript.no_speech_probability,
                message.inbound_start_ms,
                message.inbound_end_ms,
            )
        )
