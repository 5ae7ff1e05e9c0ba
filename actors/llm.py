"""The Llm actor: streams a reply from the OpenAI-compatible endpoint, phrase by phrase to the Tts.

Every text delta is recorded as generated (never as heard). Phrases go to the
Tts as soon as each is complete (the first audio waits for nothing else); when
the stream ends, an empty final phrase tells the playout the reply is whole.
Cancellation does not wait for this actor's inbox: the supervisor calls
``ReplyStreams.cancel`` from its own thread, which closes the HTTP stream at once.
A reply that is a tool call (``actors/core/tool_calls.py``) is never spoken; the call
is carried out within the reply (``actors/tool_use.py``) and what came of it is said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pykka

from actors.core.call_policy import Stage
from actors.core.liveness import BOUND_S, retry_allowed
from actors.core.spoken_text import clean_phrase, speakable
from actors.core.tool_calls import ToolCall, ToolCallReader, spoken_result, with_tool_turn
from actors.engines.language_model import ChatStream, ModelUnavailable, phrases
from actors.engines.llm_endpoints import LlmEndpoints
from actors.messages import GenerateReply, Presynthesize, StageError, Synthesize
from actors.reply_streams import ReplyHolds, ReplyStreams
from actors.supervised import ReportsFailure
from actors.tool_use import ToolUse
from events.catalogue import ReplyCompleted, ReplyTextGenerated, StageCancelled, StageFailed
from events.recorder import CallRecorder

log = logging.getLogger(__name__)

# Low: a receptionist's answers need no variety, and the embedded 0.5B model calls its
# tools cleanly more often when it samples little (two booking requests, five samples
# each: 2-3 clean calls in 5 at 0.7, 3 in 5 at 0.3, a clean call for both greedy; the
# rest mixed the call with talk of functions, which ``ToolCallReader`` keeps from the
# caller).
REPLY_TEMPERATURE = 0.2
# A speculative reply waits this long at most for its turn to be confirmed (the end of
# turn follows a pause by about a quarter second); then it is abandoned.
HELD_AT_MOST_S = 5.0


class ReplyFailed(Exception):
    """An attempt at a reply that produced nothing usable; ``phrases_sent`` were spoken."""

    def __init__(self, error: str, phrases_sent: int) -> None:
        super().__init__(error)
        self.phrases_sent = phrases_sent


class Llm(ReportsFailure, pykka.ThreadingActor):
    """Asks the LLM for a reply and hands its speakable phrases to the Tts.

    A stream cut short, an empty reply (after removing what may not be spoken), an
    HTTP error or a silent server is a failure, never a finished reply: it is retried
    once while that can still help (``liveness.retry_allowed``), else reported, and
    the supervisor says the fallback line.
    """

    stage = Stage.LLM

    def __init__(
        self,
        endpoints: LlmEndpoints,
        recorder: CallRecorder,
        tts: pykka.ActorRef[Any],
        supervisor: pykka.ActorRef[Any],
        streams: ReplyStreams,
        max_tokens: int = 80,
        model: str = "embedded",
        timeout_s: float = 10.0,
        liveness_bound_s: float = BOUND_S,
        tool_use: ToolUse | None = None,
        holds: ReplyHolds | None = None,
    ) -> None:
        super().__init__()
        self.holds = holds or ReplyHolds()  # speculative replies wait here for their turn
        self.tool_use = tool_use  # None: no tools offered to the model
        self.tool_names = tuple(
            schema["function"]["name"] for schema in (tool_use.tools.schemas if tool_use else [])
        )
        self.endpoints = endpoints
        self.recorder = recorder
        self.tts = tts
        self.supervisor = supervisor
        self.streams = streams
        self.max_tokens = max_tokens
        self.model = model
        self.timeout_s = timeout_s  # the most the server may stay silent, first token included
        self.liveness_bound_s = liveness_bound_s

    def on_receive(self, message: Any) -> None:
        if isinstance(message, GenerateReply):
            started = time.monotonic()
            attempt = 1
            while True:
                try:
                    self._generate(message)
                    return
                except pykka.ActorDeadError:  # the call ended mid-reply; its actors are stopping
                    log.info("reply %d abandoned: the call ended", message.reply_id)
                    return
                except ReplyFailed as failure:
                    error, sent = str(failure), failure.phrases_sent
                except Exception as exc:  # a bug, not the server: reported, never a silent death
                    log.exception("reply %d failed", message.reply_id)
                    self.report(StageError(Stage.LLM, message.reply_id, repr(exc)))
                    return
                elapsed = time.monotonic() - started
                if not self.streams.is_cancelled(message.reply_id) and retry_allowed(
                    attempt, sent, elapsed, self.liveness_bound_s
                ):
                    log.warning("reply %d: %s; retrying", message.reply_id, error)
                    self.recorder.record(
                        StageFailed,
                        stage="llm",
                        error=error[:500],
                        action="retry",
                        reply_id=message.reply_id,
                    )
                    attempt += 1
                    continue
                log.error("reply %d failed: %s", message.reply_id, error)
                self.report(StageError(Stage.LLM, message.reply_id, error))
                return

    def _generate(self, request: GenerateReply) -> None:
        with self.endpoints.lease() as url:
            self._stream_reply(url, request)

    def _stream_reply(self, url: str, request: GenerateReply) -> None:
        reply_id = request.reply_id
        tools = self.tool_use.tools.schemas if self.tool_use is not None else None
        reader = ToolCallReader(self.tool_names)
        stream = self._open(url, request.chat, reply_id, tools, request.must_call)
        if stream is None:
            return
        deltas: Iterator[str] = iter(stream)
        if request.held:  # speculative: the server thinks while the turn is confirmed
            held = self._while_held(stream, request)
            if held is None:
                self.streams.close(reply_id)
                return  # dropped unheard: nothing of it is recorded
            deltas = held
        first = 0
        holding = self.tool_use.holding_line(request.must_call) if self.tool_use else None
        if holding is not None:  # a tool will certainly run: say so while the model writes
            self._say_line(reply_id, 0, holding)  # its arguments (about a second here)
            first = 1
        segment = self._speak_stream(deltas, reply_id, first, reader)
        if stream.cancelled:
            self._cancelled(reply_id)
            return
        try:
            call = reader.call(stream.tool_call_deltas)
        except ValueError as exc:  # the model's call is garbage: a failed attempt
            raise ReplyFailed(f"a garbled tool call: {exc}", segment) from exc
        if call is None and request.must_call is not None:
            raise ReplyFailed(f"no call of {request.must_call}, though it was required", segment)
        finish = stream.finish_reason or "stop"
        if call is not None and self.tool_use is not None:
            finish = "tool_call"
            after = self._use_tool(url, request, call, segment, held=holding is not None)
            if after is None:
                return
            segment = after
        elif segment == 0:
            raise ReplyFailed("an empty reply (nothing speakable)", 0)
        self.tts.tell(Synthesize(reply_id, segment, "", final=True))  # the reply ends here
        self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason=finish)

    def _while_held(self, stream: ChatStream, request: GenerateReply) -> Iterator[str] | None:
        """Wait for the turn to be confirmed, reading the reply meanwhile as far as its first
        phrase, which the Tts synthesizes unheard: once the turn ends, its audio is ready.
        The reply's deltas, those read ahead first; None when it was dropped (or its turn
        never confirmed): nothing of it was then recorded or heard."""
        stream.send()
        reply_id = request.reply_id
        until = time.monotonic() + HELD_AT_MOST_S
        deltas = iter(stream)
        read: list[str] = []
        failure: Exception | None = None
        # A reply that must call a tool opens with its holding line: nothing to read ahead.
        if request.must_call is None and self.holds.read_ahead(reply_id, stream):
            try:
                first = self._read_to_first_phrase(deltas, read, reply_id, until)
            except Exception as exc:  # raised where it happened, once the reply is read
                first, failure = None, exc
            if first is not None and not stream.cancelled:
                self.tts.tell(Presynthesize(reply_id, first))
        if not self.holds.wait(reply_id, max(until - time.monotonic(), 0.0)):
            stream.cancel()
            return None
        return _resumed(read, failure, deltas)

    def _read_to_first_phrase(
        self, deltas: Iterator[str], read: list[str], reply_id: int, until: float
    ) -> str | None:
        """Read into ``read`` until the first phrase is settled (returned), the turn is, or
        ``until`` passes (None)."""
        for delta in deltas:
            read.append(delta)
            first = first_phrase(read, self.tool_names)
            if first is not None or self.holds.settled(reply_id) or time.monotonic() > until:
                return first
        return first_phrase(read, self.tool_names, ended=True)  # the whole of a short reply

    def _open(
        self,
        url: str,
        chat: list[dict[str, Any]],
        reply_id: int,
        tools: list[dict[str, Any]] | None,
        must_call: str | None = None,
    ) -> ChatStream | None:
        stream = ChatStream(
            url,
            chat,
            model=self.model,
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_s,
            user=self.recorder.call_sid,
            tools=tools,
            tool_choice=must_call if tools else None,
            temperature=REPLY_TEMPERATURE,
        )
        return stream if self.streams.open(reply_id, stream) else None

    def _speak_stream(
        self, deltas: Iterator[str], reply_id: int, segment: int, reader: ToolCallReader
    ) -> int:
        """Each phrase of the stream's speakable text to the Tts, from ``segment`` on; the
        segment after the last. A tool call's text is kept from the caller (``reader``)."""

        def record(text: str) -> None:
            self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=text)

        try:
            for phrase in spoken_phrases(deltas, reader, record):
                self.tts.tell(Synthesize(reply_id, segment, phrase, final=False))
                segment += 1
        except TimeoutError as exc:  # the server stayed silent (a cancel swallows its errors)
            error = f"timed out: no data for {self.timeout_s:.1f} s"
            raise ReplyFailed(error, segment) from exc
        except (OSError, ModelUnavailable, ValueError) as exc:  # cut, refused, malformed
            raise ReplyFailed(repr(exc), segment) from exc
        finally:
            self.streams.close(reply_id)
        return segment

    def _cancelled(self, reply_id: int) -> None:
        self.recorder.record(StageCancelled, stage="llm", reply_id=reply_id)
        self.recorder.record(ReplyCompleted, reply_id=reply_id, finish_reason="cancelled")

    def _say_line(self, reply_id: int, segment: int, text: str) -> None:
        """A line of the reply itself (not the model's): heard and interruptible like it."""
        spaced = f" {text}" if segment else text  # the reply's text reads as one
        self.recorder.record(ReplyTextGenerated, reply_id=reply_id, text=spaced)
        self.tts.tell(Synthesize(reply_id, segment, text, final=False))

    def _use_tool(
        self, url: str, request: GenerateReply, call: ToolCall, segment: int, *, held: bool
    ) -> int | None:
        """Carry out the model's tool call within the reply; the next segment, or None when
        the reply was cut meanwhile (recorded as cancelled). ``held``: the tool's holding
        line was said already."""
        assert self.tool_use is not None
        reply_id = request.reply_id
        spoken = [segment]

        def say(text: str) -> None:
            if not self.streams.is_cancelled(reply_id):
                self._say_line(reply_id, spoken[0], text)
                spoken[0] += 1

        result = self.tool_use.run(reply_id, call, say, held=held)
        if self.streams.is_cancelled(reply_id):
            self._cancelled(reply_id)
            return None
        if result is not None:
            words = spoken_result(result)
            if words is not None:
                say(words)
            else:  # the model words the answer, without tools this time (no loops)
                follow_up = self._open(
                    url, with_tool_turn(request.chat, call, result), reply_id, None
                )
                if follow_up is None:
                    self._cancelled(reply_id)
                    return None
                reader = ToolCallReader(self.tool_names)
                spoken[0] = self._speak_stream(iter(follow_up), reply_id, spoken[0], reader)
                if follow_up.cancelled:
                    self._cancelled(reply_id)
                    return None
        return spoken[0]


def spoken_phrases(
    deltas: Iterable[str], reader: ToolCallReader, generated: Callable[[str], None]
) -> Iterator[str]:
    """The reply's phrases as the caller will hear them: the model's text less any tool
    call (``reader``), cut for speech and cleaned. ``generated`` sees each piece of that
    text as it streams (the Llm records it)."""

    def visible() -> Iterator[str]:
        for delta in deltas:
            text = reader.text(delta)
            if text:
                generated(text)
                yield text
        rest = reader.flush()
        if rest:
            generated(rest)
            yield rest

    for raw in phrases(speakable(visible())):
        phrase = clean_phrase(raw)
        if phrase and reader.speakable(phrase):
            yield phrase


class _Read:
    """Deltas read so far, noting whether they ran out."""

    def __init__(self, deltas: list[str]) -> None:
        self.deltas = deltas
        self.ran_out = False

    def __iter__(self) -> Iterator[str]:
        yield from self.deltas
        self.ran_out = True


def first_phrase(
    deltas: list[str], tool_names: tuple[str, ...], *, ended: bool = False
) -> str | None:
    """The reply's first phrase once the deltas read so far settle it (exactly as
    ``spoken_phrases`` will cut the whole stream), else None: unless the stream ``ended``
    there, a phrase that only the end of what was read closed may yet go on."""
    read = _Read(deltas)
    for phrase in spoken_phrases(read, ToolCallReader(tool_names), lambda _: None):
        return None if read.ran_out and not ended else phrase
    return None


def _resumed(read: list[str], failure: Exception | None, rest: Iterator[str]) -> Iterator[str]:
    """The deltas read ahead, then the failure that stopped the reading, or the rest."""
    yield from read
    if failure is not None:
        raise failure
    yield from rest
