"""The Tts actor: turns reply text into phrases of speech for the Transport, cancellably.

A phrase already being synthesized finishes (hibari synthesizes a sentence in one
call, about 1 % of its duration) but is dropped; queued phrases of a cancelled
reply are skipped without work."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pykka

from actors.core.call_policy import Stage
from actors.engines.speech_synthesis import Phrase, SpeechEngine, StreamingSpeechEngine
from actors.messages import CancelReply, Presynthesize, Speak, SpeakAudio, Synthesize
from actors.reply_streams import ReplyStreams
from actors.supervised import ReportsFailure
from events.catalogue import StageCancelled
from events.recorder import CallRecorder

log = logging.getLogger(__name__)


class Tts(ReportsFailure, pykka.ThreadingActor):
    stage = Stage.TTS

    def __init__(
        self,
        engine: SpeechEngine,
        recorder: CallRecorder,
        transport: pykka.ActorRef[Any],
        replies: ReplyStreams,
        supervisor: pykka.ActorRef[Any],
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.timeout_s = timeout_s
        self.engine = engine
        self.recorder = recorder
        self.transport = transport
        self.replies = replies
        self.context: tuple[int, list[Phrase]] = (0, [])  # a reply's phrases so far (last 2)
        self.ready: tuple[int, str, Phrase] | None = None  # a speculative first phrase

    def on_receive(self, message: Any) -> None:
        if self.abandoned:
            return
        if isinstance(message, CancelReply):
            self.recorder.record(StageCancelled, stage="tts", reply_id=message.reply_id)
        elif isinstance(message, Presynthesize):
            self._presynthesize(message)
        elif isinstance(message, Synthesize):
            if self.replies.is_cancelled(message.reply_id):
                return  # cut in on before its turn came: no work for it
            reply_id = message.reply_id
            if not message.text:  # the end of the reply: passed on in order, nothing to say
                empty = Phrase("", np.zeros(0, dtype=np.float32), self.engine.rate, ())
                self.transport.tell(Speak(reply_id, message.segment, empty, message.final))
                return
            if self.context[0] != reply_id:
                self.context = (reply_id, [])
            if isinstance(self.engine, StreamingSpeechEngine):
                self._stream(self.engine, message)
                return
            phrase = self._ready(message)
            with self.deadline(self.timeout_s, reply_id) as deadline:
                if phrase is None:
                    phrase = self.engine.synthesize(
                        message.text,
                        context=self.context[1][-2:],
                        should_stop=lambda: self.replies.is_cancelled(reply_id),
                    )
            self.context[1].append(phrase)
            if deadline.expired or self.replies.is_cancelled(message.reply_id):  # drop it
                return
            self.transport.tell(Speak(message.reply_id, message.segment, phrase, message.final))

    def _presynthesize(self, message: Presynthesize) -> None:
        """Synthesized now, sent nowhere; kept for the reply's first ``Synthesize`` (a
        streaming voice already starts at its first chunk: nothing to gain)."""
        if isinstance(self.engine, StreamingSpeechEngine):
            return
        if self.replies.is_cancelled(message.reply_id):
            return
        reply_id = message.reply_id
        with self.deadline(self.timeout_s, reply_id):
            phrase = self.engine.synthesize(
                message.text, should_stop=lambda: self.replies.is_cancelled(reply_id)
            )
        self.ready = (reply_id, message.text, phrase)

    def _ready(self, message: Synthesize) -> Phrase | None:
        """The phrase synthesized ahead for this one, if it is that phrase. Only a reply's
        first phrase is; any other reply's first phrase supersedes what was kept."""
        if self.ready is None or message.segment != 0:
            return None
        (reply_id, text, phrase), self.ready = self.ready, None
        return phrase if (reply_id, text) == (message.reply_id, message.text) else None

    def _stream(self, engine: StreamingSpeechEngine, message: Synthesize) -> None:
        """Each chunk goes to the playout as soon as it is decoded; the phrase's words
        follow once it is whole. A cut-in stops generation at the next step."""
        reply_id, segment = message.reply_id, message.segment
        pieces = []
        with self.deadline(self.timeout_s, reply_id) as deadline:
            for samples in engine.stream(
                message.text,
                self.context[1][-2:],
                should_stop=lambda: self.replies.is_cancelled(reply_id),
            ):
                if deadline.expired or self.replies.is_cancelled(reply_id):
                    return
                pieces.append(samples)
                self.transport.tell(SpeakAudio(reply_id, segment, samples, engine.rate))
        phrase = engine.phrase_of(message.text, pieces)
        self.context[1].append(phrase)
        if deadline.expired or self.replies.is_cancelled(reply_id):
            return
        self.transport.tell(Speak(reply_id, segment, phrase, message.final, streamed=True))
