"""The Tts actor: turns reply text into phrases of speech for the Transport, cancellably."""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.messages import CancelReply, Speak, Synthesize
from actors.speech_synthesis import HibariEngine
from events.catalogue import StageCancelled
from events.recorder import CallRecorder

log = logging.getLogger(__name__)


class Tts(pykka.ThreadingActor):
    def __init__(
        self, engine: HibariEngine, recorder: CallRecorder, transport: pykka.ActorRef[Any]
    ) -> None:
        super().__init__()
        self.engine = engine
        self.recorder = recorder
        self.transport = transport
        self.cancelled: set[int] = set()

    def on_receive(self, message: Any) -> None:
        if isinstance(message, CancelReply):
            self.cancelled.add(message.reply_id)
            self.recorder.record(StageCancelled, stage="tts", reply_id=message.reply_id)
        elif isinstance(message, Synthesize):
            if message.reply_id in self.cancelled:
                return
            phrase = self.engine.synthesize(message.text)
            if message.reply_id in self.cancelled:  # cancelled while synthesizing: drop it
                return
            self.transport.tell(Speak(message.reply_id, message.segment, phrase, message.final))
