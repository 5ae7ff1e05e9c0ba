"""The caller's audio, kept with the call when they consented (``EARSHOT_RETAIN_AUDIO``).

Twilio's 20 ms frames are gathered into ``AudioRetained`` events of about a
second each (fifty events a second per call would crowd the log), placed on the
inbound axis. A jump in that axis (a gap Twilio left) starts a new chunk, so each
chunk is contiguous audio. The agent's audio is retained by the playout, phrase
by phrase, where it is placed on the outbound axis.
"""

from __future__ import annotations

from events.catalogue import AudioRetained
from events.recorder import CallRecorder


class CallerAudioRetention:
    def __init__(self, recorder: CallRecorder, chunk_ms: float = 1000.0) -> None:
        self.recorder = recorder
        self.chunk_bytes = int(chunk_ms * 8)
        self._start_ms = 0.0
        self._buffer = bytearray()

    def add(self, inbound_ms: float, mulaw: bytes) -> None:
        if self._buffer and abs(self._start_ms + len(self._buffer) / 8.0 - inbound_ms) > 0.5:
            self.flush()  # not contiguous: a gap
        if not self._buffer:
            self._start_ms = inbound_ms
        self._buffer.extend(mulaw)
        if len(self._buffer) >= self.chunk_bytes:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.recorder.record(
                AudioRetained, track="caller", start_ms=self._start_ms, mulaw=bytes(self._buffer)
            )
            self._buffer.clear()
