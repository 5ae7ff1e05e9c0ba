"""What the caller heard, aligned with what they said: a stereo timeline from the store.

Built from retained audio (``AudioRetained``, kept only with consent) and the
Heard projection, for ``earshot replay CALL_SID --audio out.wav``:

* left, the caller: each chunk at its place on the inbound axis;
* right, the agent as heard: each phrase cut to what the Heard projection says
  played (a barge-in's truncation included), placed when it played.

Both are placed on the gateway's receive clock, where they line up: the caller's
audio reaches us one network leg after they spoke it, and a mark echo reaches us
one leg after the caller heard that point. So each 20 ms of agent audio is
placed by the nearest mark echoed as played (its ``at_ms``), at real-time rate
from there; audio never proven played by a mark and not inside the truncation's
estimate is left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from events.catalogue import AudioRetained, CallStarted, Event, MarkPlayed
from events.mulaw import MULAW_DECODE
from projections import heard as heard_projection
from projections.timeline import played_at

RATE = 8000


@dataclass(frozen=True)
class HeardAudio:
    caller: np.ndarray  # int16, 8 kHz
    agent: np.ndarray  # int16, 8 kHz, the same length

    def stereo(self) -> np.ndarray:
        return np.stack([self.caller, self.agent], axis=1)


class NoAudioRetained(Exception):
    """The call kept no audio (no consent, or from before retention existed)."""


def render(events: Iterable[Event]) -> HeardAudio:
    events = list(events)
    started = next((e for e in events if isinstance(e, CallStarted)), None)
    retained = [e for e in events if isinstance(e, AudioRetained)]
    if started is None or not started.recording_consent or not retained:
        raise NoAudioRetained("no audio was retained for this call (no consent recorded)")
    heard_end = {
        turn.reply_id: turn.out_start_ms + turn.heard_ms
        for turn in heard_projection.fold_all(events).agent_turns()
        if turn.out_start_ms is not None
    }
    marks: dict[int, list[tuple[float, float]]] = {}
    for event in events:
        if isinstance(event, MarkPlayed):
            marks.setdefault(event.reply_id, []).append((event.out_ms, event.at_ms))
    placed_caller: list[tuple[float, np.ndarray]] = []
    placed_agent: list[tuple[float, np.ndarray]] = []
    for chunk in retained:
        pcm = MULAW_DECODE[np.frombuffer(chunk.mulaw, dtype=np.uint8)]
        if chunk.track == "caller":
            placed_caller.append((chunk.start_ms, pcm))
        elif chunk.reply_id is not None:
            echoes = sorted(marks.get(chunk.reply_id, []))
            placed_agent.extend(
                _as_heard(chunk.start_ms, pcm, heard_end.get(chunk.reply_id, 0.0), echoes)
            )
    end_ms = max((at + len(pcm) / 8.0 for at, pcm in placed_caller + placed_agent), default=0.0)
    length = int(end_ms * 8) + 1
    return HeardAudio(_lay(placed_caller, length), _lay(placed_agent, length))


def _as_heard(
    start_ms: float,
    pcm: np.ndarray,
    heard_to_ms: float,
    echoes: list[tuple[float, float]],
) -> list[tuple[float, np.ndarray]]:
    """A phrase's heard 20 ms blocks, each placed by its reply's nearest played mark
    (``echoes``: (out_ms, at_ms), sorted). The out axis has no idle time between
    replies, so only the reply's own marks can place its audio."""
    if not echoes:
        return []
    blocks = []
    for offset in range(0, len(pcm), 160):
        out_ms = start_ms + offset / 8.0
        if out_ms + 20.0 > heard_to_ms + 1e-6:
            break
        # placed by the echo when this block ended (or, past the last echo, the last one)
        blocks.append((played_at(out_ms + 20.0, echoes) - 20.0, pcm[offset : offset + 160]))
    return blocks


def _lay(pieces: list[tuple[float, np.ndarray]], length: int) -> np.ndarray:
    track = np.zeros(length, dtype=np.int16)
    for at_ms, pcm in pieces:
        first = max(round(at_ms * 8), 0)
        track[first : first + len(pcm)] = pcm[: max(length - first, 0)]
    return track
