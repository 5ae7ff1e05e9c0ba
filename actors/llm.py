"""The Llm actor: streams a reply from the OpenAI-compatible endpoint, phrase by phrase to the Tts.

Every text delta is recorded as generated (never as heard). Phrases go to the
Tts as soon as each is complete; one is held back so the last can be marked
final. Cancellation does not wait for this actor's inbox: the supervisor calls
``ReplyStreams.cancel`` from its own thread, which closes the HTTP stream at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pykka

from actors.language_model import ChatStream, phrases
from actors.messages import GenerateReply, StageError, Synthesize
from actors.supervised import ReportsFailure
from events.catalogue import ReplyCompleted, ReplyTextGenerated, StageCancelled
from events.recorder import CallRecorder

log = logging.getLogger(__name__)


class ReplyStreams:
    """The call's in-flight replies, cancellable from any thread: LLM streams are closed
    at once, and the Tts checks ``is_cancelled`` before each phrase (its inbox is ordered,
    so a CancelReply message would wait behind the phrases it should stop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, ChatStream] = {}
        self._cancelled: set[int] = set()

    def open(self, reply_id: int, stream: ChatStream) -> bool:
        with self._lock:
            if reply_id in self._cancelled:
                return False
            self._streams[reply_id] = stream
            return True

    def close(self, reply_id: int) -> None:
        with self._lock:
            self._streams.pop(reply_id, None)

    def is_cancelled(self, reply_id: int) -> bool:
        with self._lock:
            return reply_id in self._cancelled

    def cancel(self, reply_id: int) -> bool:
        """Cancel a reply's stream (now, or before it opens); True if one was running."""
        with self._lock:
            self._cancelled.add(reply_id)
            stream = self._streams.pop(reply_id, None)
        if stream is not None:
            stream.cancel()
        return stream is not None


class Llm(ReportsFailure, pykka.ThreadingActor):
    stage = "llm"

    def __init__(
        self,
        url: str,
        recorder: CallRecorder,
        tts: pykka.ActorRef[Any],
        supervisor: pykka.ActorRef[Any],
        streams: ReplyStreams,
        max_tokens: int = 80,
        model: str = "embedded",
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.recorder = recorder
        self.tts = tts
        self.supervisor = supervisor
        self.streams = streams
        self.max_tokens = max_tokens
        self.model = model
        self.timeout_s = timeout_s  # the most the server may stay silent, first token included

    def on_receive(self, message: Any) -> None:
        if isinstance(message, GenerateReply):
            try:
                self._generate(message)
            except pykka.ActorDeadError:  # the call ended mid-reply; its actors are stopping
                log.info("reply %d abandoned: the call ended", message.reply_id)
            except TimeoutError:
                log.error("reply %d: the LLM stalled", message.reply_id)
                error = f"timed out: no data for {self.timeout_s:.1f} s"
                self.report(StageError("llm", message.reply_id, error))
            except Exception as exc:  # reported, never a silent actor death
                log.exception("reply %d failed", message.reply_id)
                self.report(StageError("llm", message.reply_id, repr(exc)))

    def _generate(self, request: GenerateReply) -> None:
        stream = ChatStream(
            self.url,
            request.chat,
            model=self.model,
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_s,
            user=self.recorder.call_sid,
        )
        if not self.streams.open(request.reply_id, stream):
            return
        reply_id = request.reply_id

        def recorded(deltas: Iterator[str]) -> Iterator[str]:
            for delta in deltas:
                self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=delta)
                yield delta

        held: str | None = None
        segment = 0
        try:
            for phrase in phrases(recorded(iter(stream))):
                if held is not None:
                    self.tts.tell(Synthesize(reply_id, segment, held, final=False))
                    segment += 1
                held = phrase
        finally:
            self.streams.close(reply_id)
        if stream.cancelled:
            self.recorder.record(StageCancelled, stage="llm", reply_id=reply_id)
            self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="cancelled")
            return
        if held is not None:
            self.tts.tell(Synthesize(reply_id, segment, held, final=True))
        self.recorder.record(
            ReplyCompleted, reply_id=reply_id, finish_reason=stream.finish_reason or "stop"
        )
