"""The call page: one self-contained HTML file that draws a call on one time axis.

``earshot replay CALL_SID --html call.html`` writes it; the gateway serves the same page
at ``GET /calls/CALL_SID`` (and a list at ``GET /calls``) behind the metrics token. It
needs no network: the call's timeline (``projections.timeline``) is embedded as JSON and
drawn by the page's own few lines of JavaScript (``call_page.html``), and with audio
kept under consent both tracks are embedded too, as a WAV and as waveform peaks.

Every element is placed with ``left: calc(var(--scale) * ms)``: zooming changes one
CSS variable, so even a 30-minute call zooms and scrolls at once.
"""

from __future__ import annotations

import base64
import html
import io
import json
import wave
from importlib import resources
from typing import Any

import msgspec
import numpy as np

from events.catalogue import Event
from events.store import CallSummary
from projections import heard_audio, timeline

BUCKET_MS = 20  # one waveform peak per 20 ms: Twilio's frame


def render(events: list[Event], call_sid: str, at_seq: int | None = None) -> str:
    """The page for ``events`` (those up to ``at_seq``, when the call is drawn as it stood)."""
    document: dict[str, Any] = {
        "call_sid": call_sid,
        "at_seq": at_seq,
        "timeline": msgspec.to_builtins(timeline.build(events, call_sid)),
        "audio": _audio(events),
    }
    data = json.dumps(document, separators=(",", ":")).replace("</", "<\\/")
    template = resources.files("gateway").joinpath("call_page.html").read_text()
    return template.replace("__TITLE__", html.escape(call_sid)).replace("__CALL_JSON__", data)


def render_list(calls: list[CallSummary]) -> str:
    """The stored calls, newest first, each a link to its page."""
    rows = []
    for call in reversed(calls):
        sid = html.escape(call.call_sid)
        ended = html.escape(getattr(call.ended, "reason", "in progress"))
        rows.append(
            f'<tr><td><a href="/calls/{sid}">{sid}</a></td><td>{call.events}</td>'
            f"<td>{call.last_at_ms / 1000:.1f} s</td><td>{ended}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4">no calls stored</td></tr>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Earshot calls'
        "</title><style>body{font:13px system-ui,sans-serif;margin:12px}td,th{padding:2px 12px"
        ";text-align:left}</style></head><body><h1>Calls</h1><table><tr><th>call</th>"
        f"<th>events</th><th>length</th><th>ended</th></tr>{body}</table></body></html>"
    )


def _audio(events: list[Event]) -> dict[str, Any] | None:
    """Both tracks as the caller heard them (kept only with consent): a stereo WAV to play
    and each track's peaks to draw, or None when no audio was kept."""
    try:
        heard = heard_audio.render(events)
    except heard_audio.NoAudioRetained:
        return None
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(heard_audio.RATE)
        out.writeframes(heard.stereo().astype("<i2").tobytes())
    return {
        "wav": "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode(),
        "bucket_ms": BUCKET_MS,
        "caller_peaks": _peaks(heard.caller),
        "agent_peaks": _peaks(heard.agent),
    }


def _peaks(track: np.ndarray) -> list[float]:
    """The loudest sample of each 20 ms, 0..1, to two decimals (the page draws it)."""
    size = heard_audio.RATE * BUCKET_MS // 1000
    padded = np.pad(np.abs(track.astype(np.int32)), (0, -len(track) % size))
    return [round(float(p) / 32768.0, 2) for p in padded.reshape(-1, size).max(axis=1)]
