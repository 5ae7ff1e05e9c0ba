"""A phrase's audio as the pacer sends it: 20 ms frames, with the marks placed among them.

Pure scheduling, beside the playback clock whose inputs the marks are. A mark
follows the frame in which each word ends (its echo proves the word played),
one every 100 ms where no word ends (every echo keeps the clock honest), and one
at the phrase's end (its echo says the phrase played in full). Names encode
reply, segment and position: ``r{reply}s{segment}w{word}``, ``...f{frame}``,
``...end``.

A line said while the caller waits for the answer (the filler, the holding line)
*yields*: it may stop at the end of a clause ("Mm," of "Mm, let me see.") or of its
last word (its trailing silence is only a pause), so the answer, once ready, is not
held behind the rest.
The frames of those pauses are marked ``yields``: the places it may stop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from actors.core.audio_formats import FRAME_MS, MULAW_FRAME_BYTES
from events.catalogue import WordTiming

TICK_FRAMES = 5  # besides word ends, a mark after every 5th frame (100 ms)
YIELD_TAIL_FRAMES = 3  # a yielding line stops 60 ms after a word ends: its sound decays
_CLAUSE_END = (",", ".", "!", "?", ";", ":")


@dataclass
class Frame:
    reply_id: int
    mulaw: bytes
    marks: list[str] = field(default_factory=list)  # sent right after this frame
    sent: bool = False  # marks can still be added until it is
    yields: bool = False  # a yielding line may stop before this frame (see above)


def end_mark(reply_id: int, segment: int) -> str:
    return f"r{reply_id}s{segment}end"


def word_frame(word: WordTiming, frames: int) -> int:
    """The frame in which a word ends (a word past the audio: the last frame)."""
    return min(max(math.ceil(word.end_ms / FRAME_MS) - 1, 0), frames - 1)


def phrase_frames(
    reply_id: int,
    segment: int,
    mulaw: bytes,
    words: tuple[WordTiming, ...],
    *,
    yielding: bool = False,
) -> list[Frame]:
    """The phrase cut into frames (the last may be short) with its marks; [] for no audio.
    ``yielding``: the frames where it may stop are marked (``yield_points``)."""
    frames = [
        Frame(reply_id, mulaw[i : i + MULAW_FRAME_BYTES])
        for i in range(0, len(mulaw), MULAW_FRAME_BYTES)
    ]
    if not frames:
        return frames
    for index, word in enumerate(words):
        frames[word_frame(word, len(frames))].marks.append(f"r{reply_id}s{segment}w{index}")
    for index in range(TICK_FRAMES - 1, len(frames) - 1, TICK_FRAMES):
        if not frames[index].marks:
            frames[index].marks.append(f"r{reply_id}s{segment}f{index}")
    frames[-1].marks.append(end_mark(reply_id, segment))
    if yielding:
        for index in yield_points(words, len(frames)):
            frames[index].yields = True
    return frames


def yield_points(words: tuple[WordTiming, ...], frames: int) -> list[int]:
    """Where a yielding line may stop: any frame of the pause after a word that ends a
    clause, or after its last word, from ``YIELD_TAIL_FRAMES`` past the word's end to the
    frame before the next word begins (never inside a clause: "Mm, let" would be a word
    cut off, not a pause; a clause with no pause after it has no point)."""
    points: set[int] = set()
    for index, word in enumerate(words):
        last = index == len(words) - 1
        if not (last or word.text.endswith(_CLAUSE_END)):
            continue
        until = frames if last else min(int(words[index + 1].start_ms // FRAME_MS), frames)
        points.update(range(word_frame(word, frames) + 1 + YIELD_TAIL_FRAMES, until))
    return sorted(points)


def stop_at_next_point(
    queue: Sequence[Frame], line_id: int, end: str
) -> tuple[list[Frame], float] | None:
    """A yielding line stopped at its next point in ``queue`` (the frames not yet sent): the
    queue without the rest of it, its end mark ``end`` right after the audio kept, and how
    much audio is queued ahead of that point (ms); None when it has no point left."""
    stop = next((i for i, f in enumerate(queue) if f.reply_id == line_id and f.yields), None)
    if stop is None:
        return None
    ahead_ms = sum(FRAME_MS for frame in itertools.islice(queue, stop) if frame.mulaw)
    kept = [f for i, f in enumerate(queue) if i < stop or f.reply_id != line_id]
    kept.insert(stop, Frame(line_id, b"", [end]))
    return kept, ahead_ms


def streamed_frames(reply_id: int, segment: int, mulaw: bytes, first_index: int) -> list[Frame]:
    """Frames of a phrase still being generated, from frame ``first_index`` of it on, with
    the 100 ms ticks due among them (its words are not known yet)."""
    frames = [
        Frame(reply_id, mulaw[i : i + MULAW_FRAME_BYTES])
        for i in range(0, len(mulaw), MULAW_FRAME_BYTES)
    ]
    for offset, frame in enumerate(frames):
        index = first_index + offset
        if index % TICK_FRAMES == TICK_FRAMES - 1:
            frame.marks.append(f"r{reply_id}s{segment}f{index}")
    return frames


def close_streamed(
    reply_id: int, segment: int, frames: list[Frame], words: tuple[WordTiming, ...]
) -> Frame | None:
    """The phrase is whole: each word's mark on its frame if that frame is still queued (an
    earlier one has played; the clock and the ticks place it), and its end mark on the last
    frame, or, if that was sent already, on a frame of its own (returned, to queue)."""
    for index, word in enumerate(words):
        frame = frames[word_frame(word, len(frames))]
        if not frame.sent:
            frame.marks.append(f"r{reply_id}s{segment}w{index}")
    if frames[-1].sent:
        return Frame(reply_id, b"", [end_mark(reply_id, segment)])
    frames[-1].marks.append(end_mark(reply_id, segment))
    return None
