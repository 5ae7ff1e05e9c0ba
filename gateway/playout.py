"""Paced playout of one call's agent audio, on the event loop, with its playback clock.

Why here and not in an actor thread: every input of the playback clock is a
socket event (a frame sent, a mark echoed, a clear sent) and its accuracy is the
accuracy of those timestamps. They are taken on the loop that owns the socket,
so the clock lives beside them; the actors reach it through the thread-safe
``PlayoutPort`` methods, which only schedule work on the loop.

Pacing: 20 ms frames, never more than ``lead_ms`` ahead of what the clock says
Twilio has played, so a ``clear`` has little to discard and the socket never
builds a backlog (pitfall 9). A mark follows the frame in which each word ends,
every 100 ms of audio, and the end of each phrase: each echo measures how late
playback runs. Probe marks measure the round trip while idle.

A yielding line (the filler, the holding line) is sent only ``YIELD_LEAD_MS`` ahead at the points
where it may stop, so that when the answer's audio comes in, it stops at the next
of them (``LineYielded``) and the answer follows at once, rather than after it.

A bug in here must not leave the line silent: the pacer restarts after an
unexpected error (at most ``MAX_RESTARTS`` times a call), first clearing the
replies it was playing, so the caller's phone drops what it buffered and the
record says where each stopped; the supervisor hears of it (``on_failure``) and
apologises. Past the limit the stream is closed and the call ends, recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from actors.audio_retention import RecordingConsent
from actors.core.audio_formats import FRAME_MS
from actors.core.phrase_frames import (
    Frame,
    close_streamed,
    end_mark,
    phrase_frames,
    stop_at_next_point,
    streamed_frames,
)
from actors.core.playback_clock import LEAD_MS, PlaybackClock
from actors.core.twilio_stream import clear_message, mark_message, media_message
from events.catalogue import (
    AudioRetained,
    AudioSent,
    ClearSent,
    LineYielded,
    MarkFlushed,
    MarkPlayed,
    MarkSent,
    ReplyTruncated,
    SpeechSynthesized,
    WordTiming,
)
from events.recorder import CallRecorder

log = logging.getLogger(__name__)

MAX_RESTARTS = 2  # the pacer failing more often than this in one call ends the call
# How far ahead of playback a yielding line's audio goes past a point where it may stop:
# enough that a late timer does not leave a hole, little enough to keep the point open.
YIELD_LEAD_MS = 80.0

LATENESS_SAMPLES: deque[float] = deque(maxlen=20_000)
"""Pacer lateness (ms) of scheduled frames, all calls in this process (for /metrics and benches)."""


class PendingTruncation(NamedTuple):
    """A clear sent, its cut not yet recorded: settled by the first flushed echo, or at
    ``deadline``."""

    replies: tuple[int, ...]  # what it cut, the reply the caller cut in on first
    deadline: float  # monotonic: no flushed echo by then, the clock's estimate stands
    flushed_above_ms: float  # an echo of a mark beyond this out_ms can only be a flush


class Playout:
    def __init__(
        self,
        stream_sid: str,
        send_text: Callable[[str], Awaitable[None]],
        close_socket: Callable[[int, str], Awaitable[None]],
        recorder: CallRecorder,
        lead_ms: float = LEAD_MS,
        on_reply_played: Callable[[int], None] | None = None,
        *,
        consent: RecordingConsent | None = None,
        on_failure: Callable[[int | None, str], None] | None = None,
    ) -> None:
        self.stream_sid = stream_sid
        self.consent = consent  # None: nothing is kept; else kept once it is given
        self.clock = PlaybackClock(lead_ms=lead_ms)
        self.recorder = recorder
        self.on_reply_played = on_reply_played
        self.on_failure = on_failure  # (the reply it was playing, the error): apologise
        self.failures = 0
        self._playing: int | None = None  # the reply of the last frame taken off the queue
        self._send_text = send_text
        self._close_socket = close_socket
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Frame] = deque()
        # Each clear asked for: the reply cut in on, and everything sounding when it was asked
        # (a line queued after, say the transfer's, is not cut).
        self._clears: deque[tuple[int, set[int]]] = deque()
        self._reply_start: dict[int, float] = {}
        self._reply_sent_to: dict[int, float] = {}  # where each reply's audio sent so far ends
        self._final_marks: dict[str, int] = {}
        self._last_end_mark: dict[int, str] = {}  # each reply's last phrase end, until echoed
        self._cleared: set[int] = set()
        self._yielding: dict[int, float] = {}  # yielding lines queued: where each starts
        # (reply, segment) of phrases still streaming in: where they started, their frames
        self._streaming: dict[tuple[int, int], tuple[float, list[Frame]]] = {}
        self._close: tuple[int, str] | None = None
        self._truncation: PendingTruncation | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    # --- the actors' side (any thread) ------------------------------------------

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
        self._loop.call_soon_threadsafe(
            self._guarded,
            self._enqueue_phrase,
            reply_id,
            segment,
            text,
            mulaw,
            words,
            final,
            streamed,
            yielding,
        )

    def enqueue_audio(self, reply_id: int, segment: int, mulaw: bytes) -> None:
        self._loop.call_soon_threadsafe(
            self._guarded, self._enqueue_audio, reply_id, segment, mulaw
        )

    def clear(self, reply_id: int) -> None:
        self._loop.call_soon_threadsafe(self._request_clear, reply_id)

    def mark_echoed(self, name: str, received_at: float) -> None:
        self._loop.call_soon_threadsafe(self._guarded, self._on_echo, name, received_at)

    def close(self, code: int, reason: str) -> None:
        self._loop.call_soon_threadsafe(self._request_close, code, reason)

    # --- the loop's side ------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"playout-{self.stream_sid}")

    async def stop(self) -> None:
        self.closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._truncation is not None:  # the call ended before the clear's echoes came back
            self._record_truncation(None)

    @property
    def queued_ms(self) -> float:
        return sum(FRAME_MS for frame in self._queue if frame.mulaw)

    def _enqueue_audio(self, reply_id: int, segment: int, mulaw: bytes) -> None:
        """Audio of a phrase still being generated: queued at once, its start kept for the
        phrase's record (made when the phrase is whole)."""
        if reply_id in self._cleared or self.closed:
            return
        self._yield_to(reply_id)
        _, frames = self._streaming.setdefault(
            (reply_id, segment), (self.clock.sent_ms + self.queued_ms, [])
        )
        more = streamed_frames(reply_id, segment, mulaw, len(frames))
        frames.extend(more)
        self._queue.extend(more)
        self._wake.set()

    def _enqueue_phrase(
        self,
        reply_id: int,
        segment: int,
        text: str,
        mulaw: bytes,
        words: tuple[WordTiming, ...],
        final: bool,
        streamed: bool = False,
        yielding: bool = False,
    ) -> None:
        if reply_id in self._cleared or self.closed:
            return  # synthesized after the caller cut in: never sent
        if streamed:
            self._close_streamed(reply_id, segment, text, mulaw, words, final)
            return
        self._yield_to(reply_id)
        out_start = self.clock.sent_ms + self.queued_ms
        frames = phrase_frames(reply_id, segment, mulaw, words, yielding=yielding)
        if yielding and frames:
            self._yielding[reply_id] = out_start
        if not frames:
            if final:  # the reply ended after its last phrase was queued
                self._reply_ended(reply_id)
            return
        self._record_phrase(reply_id, segment, text, words, frames, out_start, final)
        self._queue.extend(frames)
        self._wake.set()

    def _yield_to(self, reply_id: int) -> None:
        """Another reply's audio is coming: a yielding line still queued stops at its next
        point (``stop_at_next_point``), so that audio follows it at once."""
        for line_id in [line for line in self._yielding if line != reply_id]:
            line_start = self._yielding.pop(line_id)  # it yields once, or plays out
            end = self._last_end_mark.get(line_id)
            stopped = None if end is None else stop_at_next_point(self._queue, line_id, end)
            if stopped is None:  # past its last point (or cleared)
                continue
            kept, ahead_ms = stopped
            self._queue = deque(kept)
            self.recorder.record(
                LineYielded,
                reply_id=line_id,
                to_reply_id=reply_id,
                kept_ms=self.clock.sent_ms + ahead_ms - line_start,
            )

    def _record_phrase(
        self,
        reply_id: int,
        segment: int,
        text: str,
        words: tuple[WordTiming, ...],
        frames: list[Frame],
        out_start: float,
        final: bool,
    ) -> None:
        """Record a whole phrase where its audio starts (and its audio, with consent), and
        remember its end mark: the reply has played once the last one echoes."""
        self.recorder.record(
            SpeechSynthesized,
            reply_id=reply_id,
            segment=segment,
            text=text,
            words=words,
            audio_ms=len(frames) * FRAME_MS,
            out_start_ms=out_start,
        )
        if self.consent is not None and self.consent.given:
            mulaw = b"".join(frame.mulaw for frame in frames)
            self.recorder.record(
                AudioRetained, track="agent", start_ms=out_start, mulaw=mulaw, reply_id=reply_id
            )
        end = end_mark(reply_id, segment)
        self._last_end_mark[reply_id] = end
        if final:
            self._final_marks[end] = reply_id

    def _close_streamed(
        self,
        reply_id: int,
        segment: int,
        text: str,
        tail: bytes,
        words: tuple[WordTiming, ...],
        final: bool,
    ) -> None:
        """A streamed phrase is whole: its tail queued, its words and end marked on the frames
        not yet sent, and it is recorded as one phrase from where its first audio went."""
        if tail:
            self._enqueue_audio(reply_id, segment, tail)
        streamed = self._streaming.pop((reply_id, segment), None)
        if streamed is None:  # no audio at all
            if final:
                self._reply_ended(reply_id)
            return
        out_start, frames = streamed
        marks_only = close_streamed(reply_id, segment, frames, words)
        self._record_phrase(reply_id, segment, text, words, frames, out_start, final)
        if marks_only is not None:
            self._queue.append(marks_only)
        self._wake.set()

    def _reply_ended(self, reply_id: int) -> None:
        """The reply is whole: it has played once its last phrase's end mark echoes (or now,
        if that echo already came)."""
        end_mark = self._last_end_mark.get(reply_id)
        if end_mark is not None:
            self._final_marks[end_mark] = reply_id
        elif self.on_reply_played is not None:
            self.on_reply_played(reply_id)

    def _request_clear(self, reply_id: int) -> None:
        if reply_id not in self._cleared:
            cut = {reply_id} | self._sounding(time.monotonic())
            self._cleared |= cut
            self._clears.append((reply_id, cut))
            self._wake.set()

    def _request_close(self, code: int, reason: str) -> None:
        self._close = (code, reason)
        self._wake.set()

    async def _run(self) -> None:
        while not self.closed:
            try:
                await self._pace()
            except (OSError, RuntimeError) as exc:  # the socket went away under us (uvicorn's
                # ClientDisconnected is an OSError; sending after close is a RuntimeError)
                log.info(
                    "playout for %s stopped: socket closed (%s)",
                    self.stream_sid,
                    type(exc).__name__,
                )
                self.closed = True
            except Exception as exc:
                if not self._recover(exc):
                    with contextlib.suppress(Exception):
                        await self._close_socket(1011, "playout failed")
                    self.closed = True

    def _guarded(self, handler: Callable[..., None], *args: object) -> None:
        """Run one of the loop-side handlers; an error in it is a pacer failure too."""
        try:
            handler(*args)
        except Exception as exc:
            if not self._recover(exc):
                self._request_close(1011, "playout failed")

    def _recover(self, error: Exception) -> bool:
        """After an unexpected error: clear what was playing and queued, tell the supervisor;
        False once the pacer has failed too often to go on."""
        self.failures += 1
        log.exception("playout for %s failed (%d)", self.stream_sid, self.failures)
        if self.failures > MAX_RESTARTS:
            return False
        lost = {frame.reply_id for frame in self._queue}
        if self._playing is not None:
            lost.add(self._playing)
        for reply_id in sorted(lost):
            self._request_clear(reply_id)
        if self.on_failure is not None:
            self.on_failure(self._playing, repr(error)[:500])
        return True

    async def _pace(self) -> None:
        """Send frames on time, clears at once, probes while idle: until closed."""
        while not self.closed:
            if self._close is not None:
                code, reason = self._close
                await self._close_socket(code, reason)
                self.closed = True
                return
            if self._clears:
                await self._do_clear(*self._clears.popleft())
                continue
            now = time.monotonic()
            if self._truncation is not None and now >= self._truncation.deadline:
                self._record_truncation(None)
            if self._queue:
                due = self.clock.next_send_at(now)
                if self._queue[0].yields:  # keep the point open until playback is near it
                    due = max(due, self.clock.buffer_end - YIELD_LEAD_MS / 1000.0)
                if due <= now:
                    await self._send_frame(now)
                    continue
                await self._sleep(due - now)
                if not self._clears and self._queue and self._close is None:
                    LATENESS_SAMPLES.append((time.monotonic() - due) * 1000.0)
                continue
            if self.clock.probe_due(now):
                name = self.clock.on_probe_sent(now)
                await self._send_text(mark_message(self.stream_sid, name))
                continue
            watching = self._truncation is not None or self.clock.probing()
            await self._sleep(0.03 if watching else 0.25)

    async def _sleep(self, seconds: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _send_frame(self, now: float) -> None:
        frame = self._queue.popleft()
        frame.sent = True
        self._playing = frame.reply_id
        if not frame.mulaw:  # a streamed phrase's end mark, after audio already sent
            await self._send_marks(frame)
            return
        await self._send_text(media_message(self.stream_sid, frame.mulaw))
        sent_at = time.monotonic()
        out_start, out_end = self.clock.on_frame_sent(sent_at)
        self._reply_start.setdefault(frame.reply_id, out_start)
        self._reply_sent_to[frame.reply_id] = out_end
        self.recorder.record(
            AudioSent,
            at=sent_at,
            reply_id=frame.reply_id,
            out_start_ms=out_start,
            out_end_ms=out_end,
        )
        await self._send_marks(frame)

    async def _send_marks(self, frame: Frame) -> None:
        for name in frame.marks:
            await self._send_text(mark_message(self.stream_sid, name))
            out_ms = self.clock.on_mark_sent(name, frame.reply_id)
            self.recorder.record(MarkSent, name=name, reply_id=frame.reply_id, out_ms=out_ms)

    async def _do_clear(self, reply_id: int, cut: set[int]) -> None:
        """Stop ``reply_id`` and whatever else was sounding when the clear was asked for (a
        filler or a holding line said while it was coming: Twilio's clear drops all of it),
        each recorded as truncated."""
        self._queue = deque(f for f in self._queue if f.reply_id not in cut)
        for never_sent in sorted(r for r in cut if r not in self._reply_start):
            # Nothing of it reached Twilio: nothing to clear, nothing heard.
            self.recorder.record(
                ReplyTruncated,
                reply_id=never_sent,
                heard_ms=0.0,
                heard_lower_ms=0.0,
                heard_upper_ms=0.0,
            )
        # The reply the caller cut in on first: it is always recorded as cut.
        sent = tuple(
            sorted((r for r in cut if r in self._reply_start), key=lambda r: r != reply_id)
        )
        if not sent:
            return
        await self._send_text(clear_message(self.stream_sid))
        cleared_at = time.monotonic()
        estimate = self.clock.on_clear(cleared_at)
        self.recorder.record(
            ClearSent, at=cleared_at, reply_id=reply_id, out_sent_ms=estimate.out_sent_ms
        )
        if self._truncation is not None:
            self._record_truncation(None)
        # Where playback stopped is settled when the first flushed echo returns (or soon after).
        deadline = cleared_at + 2 * self.clock.rtt_s() + 0.15
        self._truncation = PendingTruncation(sent, deadline, estimate.upper_ms)

    def _sounding(self, now: float) -> set[int]:
        """The replies with audio queued, or sent and maybe still in Twilio's buffer."""
        sounding = {frame.reply_id for frame in self._queue if frame.mulaw}
        if self._playing is not None and self.clock.buffered_ms(now) > 0:
            sounding.add(self._playing)
        return sounding

    def _record_truncation(self, first_echo_at: float | None) -> None:
        """Where the clear stopped playback, for each reply it cut: but another reply whose
        audio had all played before the earliest point the clear can have stopped it was
        heard in full, not cut."""
        assert self._truncation is not None
        reply_ids = self._truncation.replies
        self._truncation = None
        estimate = self.clock.refine_clear(first_echo_at)
        if estimate is None:
            return
        for index, reply_id in enumerate(reply_ids):
            start = self._reply_start[reply_id]
            if index and self._reply_sent_to[reply_id] <= estimate.lower_ms:
                continue
            self.recorder.record(
                ReplyTruncated,
                reply_id=reply_id,
                heard_ms=max(estimate.played_ms - start, 0.0),
                heard_lower_ms=max(estimate.lower_ms - start, 0.0),
                heard_upper_ms=max(estimate.upper_ms - start, 0.0),
            )

    def _on_echo(self, name: str, received_at: float) -> None:
        verdict = self.clock.on_mark_echo(name, received_at)
        mark = verdict.mark
        if verdict.kind == "played" and mark is not None:
            self.recorder.record(
                MarkPlayed, at=received_at, name=name, reply_id=mark.reply_id, out_ms=mark.out_ms
            )
            if self._last_end_mark.get(mark.reply_id) == name:
                del self._last_end_mark[mark.reply_id]
            reply_id = self._final_marks.pop(name, None)
            if reply_id is not None and self.on_reply_played is not None:
                self.on_reply_played(reply_id)
        elif verdict.kind == "flushed" and mark is not None:
            self.recorder.record(
                MarkFlushed, at=received_at, name=name, reply_id=mark.reply_id, out_ms=mark.out_ms
            )
            # Only a mark that cannot have played times the flush: one just inside the
            # bounds may be a genuine echo that was in flight when the clear went out.
            if self._truncation is not None and mark.out_ms > self._truncation.flushed_above_ms:
                self._record_truncation(received_at)
        elif verdict.kind == "unknown":
            log.warning("call %s: echo of a mark never sent: %r", self.recorder.call_sid, name[:64])
