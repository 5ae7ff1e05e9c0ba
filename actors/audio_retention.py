"""The call's audio, kept when the operator retains it (``EARSHOT_RETAIN_AUDIO``), and
only once the caller has heard that the call is recorded.

Twilio's 20 ms frames are gathered into ``AudioRetained`` events of about a
second each (fifty events a second per call would crowd the log), placed on the
inbound axis. A jump in that axis (a gap Twilio left) starts a new chunk, so each
chunk is contiguous audio. The agent's audio is retained by the playout, phrase
by phrase, where it is placed on the outbound axis.
"""

from __future__ import annotations

import threading

from events.catalogue import AudioRetained
from events.recorder import CallRecorder


class RecordingConsent:
    """Whether the caller has heard the recording announcement: nothing is kept before.

    The announcement opens the greeting. Once the greeting's heard words (proved by
    its marks, or the cut's estimate) cover it, retention opens for the caller's audio
    and the agent's. A caller who cut in before hearing it all is not recorded at all.
    An operator who announces elsewhere (an empty announcement) keeps from the start.
    """

    def __init__(self, announcement: str) -> None:
        self.announcement = announcement
        self.words_needed = len(announcement.split())
        self._given = threading.Event()  # read by the transport and the playout
        if self.words_needed == 0:
            self._given.set()

    @property
    def given(self) -> bool:
        return self._given.is_set()

    def greeting_heard(self, heard_text: str) -> bool:
        """Note what the caller has heard of the greeting; True when that gives consent."""
        if self.given or len(heard_text.split()) < self.words_needed:
            return False
        self._given.set()
        return True


class CallerAudioRetention:
    def __init__(
        self, recorder: CallRecorder, consent: RecordingConsent, chunk_ms: float = 1000.0
    ) -> None:
        self.recorder = recorder
        self.consent = consent
        self.chunk_bytes = int(chunk_ms * 8)
        self._start_ms = 0.0
        self._buffer = bytearray()

    def add(self, inbound_ms: float, mulaw: bytes) -> None:
        if not self.consent.given:
            return
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
