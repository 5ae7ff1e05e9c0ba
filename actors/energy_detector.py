"""A loudness-based speech detector: the barge-in trigger until the silero VAD actor exists.

Pure state over 16 kHz PCM frames. Speech starts when frames stay ``margin_db``
above the tracked noise floor (and above an absolute floor) for ``min_speech_ms``,
so a click is not a barge-in; it stops after ``hangover_ms`` below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.audio_formats import Pcm16, rms_dbfs


@dataclass
class SpeechEdge:
    started: bool  # True: speech began; False: it ended
    inbound_ms: float  # where, on the caller's audio axis


@dataclass
class EnergyDetector:
    margin_db: float = 15.0
    absolute_floor_db: float = -45.0
    min_speech_ms: float = 60.0
    hangover_ms: float = 300.0
    noise_db: float = -70.0
    speaking: bool = False
    _loud_ms: float = 0.0
    _quiet_ms: float = 0.0
    _position_ms: float = 0.0

    def feed(self, frame: Pcm16, rate: int = 16000) -> SpeechEdge | None:
        duration = len(frame) * 1000.0 / rate
        level = rms_dbfs(frame)
        self._position_ms += duration
        loud = level > max(self.noise_db + self.margin_db, self.absolute_floor_db)
        if not loud:  # track the noise floor on quiet frames only (fast down, slow up)
            rate_db = 0.5 if level > self.noise_db else 0.3
            self.noise_db += rate_db * (max(level, -90.0) - self.noise_db)
        if loud:
            self._loud_ms += duration
            self._quiet_ms = 0.0
            if not self.speaking and self._loud_ms >= self.min_speech_ms:
                self.speaking = True
                return SpeechEdge(True, self._position_ms - self._loud_ms)
        else:
            self._quiet_ms += duration
            if not self.speaking:
                self._loud_ms = 0.0
            elif self._quiet_ms >= self.hangover_ms:
                self.speaking = False
                self._loud_ms = 0.0
                return SpeechEdge(False, self._position_ms - self._quiet_ms)
        return None
