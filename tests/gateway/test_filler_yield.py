"""The filler yields: once the answer's audio is queued, "Mm, let me see." stops at its next
clause's end (or its last word's), the answer follows at once, and the record says so; and
a caller who cuts in on the filler stops it, like any other line.

The real ``Playout`` (pacer, playback clock, recorder into a real SQLite store) sends to a
socket that only keeps what it was sent and when; the lines are the embedded voice's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.core.audio_formats import FRAME_MS
from actors.core.phrase_frames import YIELD_TAIL_FRAMES, yield_points
from actors.engines.fixed_lines import FixedLines, RenderedLine
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import (
    AnyEvent,
    CallStarted,
    LineYielded,
    ReplyTruncated,
    SpeechSynthesized,
)
from events.database import create_engine, upgrade
from events.group_commit import GroupCommitWriter
from events.recorder import CallRecorder
from events.store import EventStore
from gateway.playout import YIELD_LEAD_MS, Playout

FILLER, ANSWER, GOODBYE = 1, 2, 3
CALL = "CAyield"


@dataclass
class Socket:
    """What Twilio would have received: (when, reply of a media frame or a mark's name)."""

    sent: list[tuple[float, str]] = field(default_factory=list)

    async def send(self, text: str) -> None:
        message = json.loads(text)
        what = message["mark"]["name"] if message["event"] == "mark" else message["event"]
        self.sent.append((time.monotonic(), what))

    def media_count(self) -> int:
        return sum(what == "media" for _, what in self.sent)


@pytest.fixture(scope="module")
def lines() -> FixedLines:
    return FixedLines(HibariEngine())


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/calls.db"
    upgrade(url)
    return url


@pytest.fixture
async def call(db_url: str) -> AsyncIterator[tuple[Playout, Socket, EventStore]]:
    engine = create_engine(db_url)
    store = EventStore(engine)
    writer = GroupCommitWriter(store, linger_s=0.0)
    await writer.start()
    recorder = CallRecorder(CALL, writer)
    recorder.record(CallStarted, stream_sid="MZyield", wall_time_unix=1.7e9)
    socket = Socket()

    async def close(code: int, reason: str) -> None:
        return None

    playout = Playout("MZyield", socket.send, close, recorder)
    playout.start()
    yield playout, socket, store
    await playout.stop()
    await writer.close()
    await engine.dispose()


def say(playout: Playout, reply_id: int, line: RenderedLine, *, yielding: bool) -> None:
    playout.enqueue_phrase(reply_id, 0, line.text, line.mulaw, line.words, yielding=yielding)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def events_of(store: EventStore) -> list[AnyEvent]:
    await asyncio.sleep(0.1)  # the group-commit writer's turn
    return await store.read_call(CALL)


def frames_of(line: RenderedLine) -> int:
    return -(-len(line.mulaw) // 160)


def test_a_filler_may_stop_in_the_pause_after_a_clause_or_its_last_word_never_inside_one(
    lines: FixedLines,
) -> None:
    filler = lines.get("Mm, let me see.")
    mm, let, _, see = filler.words
    frames = frames_of(filler)
    points = yield_points(filler.words, frames)

    def pause(word_end_ms: float, next_start_ms: float) -> list[int]:
        first = int(-(-word_end_ms // FRAME_MS)) + YIELD_TAIL_FRAMES
        return list(range(first, min(int(next_start_ms // FRAME_MS), frames)))

    after_mm, after_see = pause(mm.end_ms, let.start_ms), pause(see.end_ms, 1e9)
    assert after_mm and after_see, filler.words
    assert points == after_mm + after_see, (points, filler.words)
    assert after_see[-1] == frames - 1  # the trailing silence may be skipped
    one_clause = lines.get("One moment while I book that.")
    assert yield_points(one_clause.words, frames_of(one_clause))[0] * FRAME_MS > (
        one_clause.words[-1].end_ms
    )


async def test_an_answer_ready_as_the_filler_starts_follows_its_first_clause(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    playout, socket, store = call
    filler, answer = lines.get("Mm, let me see."), lines.get("We close at ten.")
    say(playout, FILLER, filler, yielding=True)
    say(playout, ANSWER, answer, yielding=False)
    first_point = yield_points(filler.words, frames_of(filler))[0]
    await until(lambda: socket.media_count() >= first_point + frames_of(answer))
    names = [what for _, what in socket.sent]
    end = names.index(f"r{FILLER}s0end")
    assert names[:end].count("media") == first_point  # "Mm," and 60 ms, no more
    assert f"r{FILLER}s0w1" not in names  # "let" never went out
    assert names[end + 1 :].count("media") == frames_of(answer)  # then the whole answer
    events = await events_of(store)
    yielded = [e for e in events if isinstance(e, LineYielded)]
    assert [(e.reply_id, e.to_reply_id, e.kept_ms) for e in yielded] == [
        (FILLER, ANSWER, first_point * FRAME_MS)
    ]
    placed = {e.reply_id: e.out_start_ms for e in events if isinstance(e, SpeechSynthesized)}
    # The answer's words are placed where its audio really went: right after what was kept.
    assert placed[ANSWER] == placed[FILLER] + first_point * FRAME_MS


async def test_an_answer_ready_later_follows_the_last_word_and_the_point_is_held_open(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    playout, socket, store = call
    filler, answer = lines.get("Mm, let me see."), lines.get("We close at ten.")
    let = filler.words[1]
    points = yield_points(filler.words, frames_of(filler))
    first_point = points[0]
    last_point = next(p for p in points if p * FRAME_MS > let.start_ms)
    say(playout, FILLER, filler, yielding=True)
    await until(lambda: socket.media_count() * FRAME_MS > let.start_ms)  # "let" has gone out
    say(playout, ANSWER, answer, yielding=False)
    await until(lambda: socket.media_count() >= last_point + frames_of(answer))
    names = [what for _, what in socket.sent]
    assert names[: names.index(f"r{FILLER}s0end")].count("media") == last_point
    media_at = [at for at, what in socket.sent if what == "media"]
    # Past a point where it may stop, the filler goes out only YIELD_LEAD_MS ahead of
    # playback, not the usual 200 ms: the point stays open while it plays.
    held_ms = (media_at[first_point] - media_at[0]) * 1000.0
    assert held_ms >= first_point * FRAME_MS - YIELD_LEAD_MS - 20.0, held_ms
    events = await events_of(store)
    assert [e.kept_ms for e in events if isinstance(e, LineYielded)] == [last_point * FRAME_MS]


async def test_an_answer_after_the_filler_ends_changes_nothing(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    playout, socket, store = call
    filler, answer = lines.get("Mm, let me see."), lines.get("We close at ten.")
    say(playout, FILLER, filler, yielding=True)
    await until(lambda: socket.media_count() >= frames_of(filler))
    say(playout, ANSWER, answer, yielding=False)
    await until(lambda: socket.media_count() >= frames_of(filler) + frames_of(answer))
    events = await events_of(store)
    assert not [e for e in events if isinstance(e, LineYielded)]


async def test_a_line_that_does_not_yield_is_never_cut(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    playout, socket, store = call
    hold, answer = lines.get("One moment, please."), lines.get("We close at ten.")
    say(playout, FILLER, hold, yielding=False)
    say(playout, ANSWER, answer, yielding=False)
    await until(lambda: socket.media_count() >= frames_of(hold) + frames_of(answer))
    names = [what for _, what in socket.sent]
    assert names[: names.index(f"r{FILLER}s0end")].count("media") == frames_of(hold)
    assert not [e for e in await events_of(store) if isinstance(e, LineYielded)]


async def test_a_caller_cutting_in_on_the_filler_stops_it_though_the_answer_never_began(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    playout, socket, store = call
    filler = lines.get("Mm, let me see.")
    say(playout, FILLER, filler, yielding=True)
    await until(lambda: socket.media_count() >= 15)  # "let" is playing
    playout.clear(ANSWER)  # the barge-in cancels the answer the filler covered for
    await until(lambda: "clear" in [what for _, what in socket.sent])
    sent_before_clear = socket.media_count()
    await asyncio.sleep(0.3)
    assert socket.media_count() == sent_before_clear  # nothing more of the filler went out
    events = await events_of(store)
    cut = {e.reply_id: e for e in events if isinstance(e, ReplyTruncated)}
    assert cut[ANSWER].heard_ms == 0.0
    # The filler is recorded as cut where playback stopped: before all it had sent.
    assert 0.0 < cut[FILLER].heard_ms < sent_before_clear * FRAME_MS


async def test_a_line_queued_right_after_a_clear_is_not_cut_by_it(
    call: tuple[Playout, Socket, EventStore], lines: FixedLines
) -> None:
    """As when the model transfers the call: its reply is stopped, and the transfer's line
    is queued at once, before the pacer gets to the clear. Only what was sounding when the
    clear was asked for is cut."""
    playout, socket, store = call
    filler, transferring = lines.get("Mm, let me see."), lines.get("Putting you through now.")
    say(playout, FILLER, filler, yielding=True)
    await until(lambda: socket.media_count() >= 15)
    playout.clear(ANSWER)
    say(playout, GOODBYE, transferring, yielding=False)
    await until(lambda: f"r{GOODBYE}s0end" in [what for _, what in socket.sent])
    names = [what for _, what in socket.sent]
    assert names[names.index("clear") :].count("media") == frames_of(transferring)
    cut = {e.reply_id for e in await events_of(store) if isinstance(e, ReplyTruncated)}
    assert cut == {FILLER, ANSWER}
