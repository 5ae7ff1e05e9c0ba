"""The Stt actor: transcribes each caller utterance the VAD delimited, for its supervisor.

Rolling partials (the turn so far, while the caller talks) are best-effort: one is
skipped when anything waits behind it in the inbox or the engine is busy with
another call, so it never delays a transcript that can answer a turn.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.core.call_policy import Stage, Transcribed
from actors.engines.speech_recognition import WhisperEngine
from actors.messages import CallerUtterance, StageError
from actors.supervised import ReportsFailure

log = logging.getLogger(__name__)


class Stt(ReportsFailure, pykka.ThreadingActor):
    stage = Stage.STT

    def __init__(
        self, engine: WhisperEngine, supervisor: pykka.ActorRef[Any], timeout_s: float = 5.0
    ) -> None:
        super().__init__()
        self.engine = engine
        self.supervisor = supervisor
        self.timeout_s = timeout_s

    def on_receive(self, message: Any) -> None:
        if self.abandoned or not isinstance(message, CallerUtterance):
            return
        if message.rolling and not self.actor_inbox.empty():
            return  # something newer is waiting: this partial is already stale
        try:
            with self.deadline(self.timeout_s) as deadline:
                if message.rolling:
                    transcript = self.engine.transcribe_if_idle(message.pcm)
                else:
                    transcript = self.engine.transcribe(message.pcm)
        except Exception as exc:  # reported, never a silent actor death
            log.exception("transcription failed")
            if not self.abandoned:
                self.report(StageError(Stage.STT, None, repr(exc)))
            return
        if deadline.expired or transcript is None:
            return  # too late (the supervisor has moved on), or a partial skipped
        self.report(
            Transcribed(
                message.turn,
                transcript.text,
                transcript.no_speech_probability,
                message.inbound_start_ms,
                message.inbound_end_ms,
                message.speech_end_ms,
                message.tentative,
                message.rolling,
                transcript.avg_logprob,
                transcript.compression_ratio,
                transcript.weakest_token_logprob,
                transcript.speech_to_noise_db,
            )
        )
