"""When does the caller start and stop talking? Pure decisions over VAD probabilities.

Fed one speech probability (and the chunk's loudness) per 32 ms chunk:

* A turn starts after ``min_speech_ms`` of speech (a cough or an "mm" is not a
  turn); while the agent is talking, after only ``barge_in_ms``: the agent must
  stop within a quarter second of the caller starting to talk, network legs
  included. Being sure comes after, not before (pitfall 3): the agent pauses at
  once, and if the caller only said "okay" or made a noise it resumes from the
  first unheard word (``turn_taking.interruption_kind``).
* It ends after ``end_of_turn_ms`` of silence, or ``end_of_turn_agent_ms`` while
  the agent talks (a pause in a barge-in is not the end of it), or
  ``unfinished_wait_ms`` when the words before the pause sound unfinished
  (``actors.core.end_of_turn``: "a table for ...").
* After ``pause_ms`` of silence it reports a *pause*: the place the turn will end
  if the caller stays quiet. Transcription starts there, speculatively, so the
  transcript is ready about when the end of turn is confirmed (the STT's ~0.5 s
  then overlaps the end-of-turn wait instead of following it), and so does the
  reply (preemptive generation). Speech again after a pause reports a *resume*:
  what was started on the pause is then moot.
* In noise the model's probability rises on non-speech, so the threshold rises
  with the noise floor, tracked on chunks that are clearly not speech.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.core.end_of_turn import UNFINISHED_WAIT_MS


@dataclass(frozen=True)
class SpeechEdge:
    started: bool  # True: speech began; False: it ended (or paused)
    inbound_ms: float  # where, on the caller's audio axis
    pause: bool = False  # speech stopped here, but the end of turn is not confirmed yet
    resumed: bool = False  # speech again after a pause, within the same turn


@dataclass
class SpeechTurns:
    threshold: float = 0.5
    hysteresis: float = 0.15
    min_speech_ms: float = 96.0
    barge_in_ms: float = 64.0
    end_of_turn_ms: float = 300.0
    end_of_turn_agent_ms: float = 600.0
    unfinished_wait_ms: float = UNFINISHED_WAIT_MS
    pause_ms: float = 64.0
    noise_db: float = -70.0
    speaking: bool = False
    _speech_ms: float = 0.0
    _silence_ms: float = 0.0
    _position_ms: float = 0.0

    def current_threshold(self) -> float:
        """Base threshold, raised by up to 0.3 as the noise floor climbs from -50 to -20 dBFS."""
        return self.threshold + min(max((self.noise_db + 50.0) / 100.0, 0.0), 0.3)

    def feed(
        self,
        probability: float,
        level_db: float,
        chunk_ms: float,
        agent_talking: bool = False,
        *,
        unfinished: bool = False,
    ) -> SpeechEdge | None:
        self._position_ms += chunk_ms
        threshold = self.current_threshold()
        if probability < 0.2 and level_db > -100:  # clearly not speech: learn the noise floor
            self.noise_db += 0.1 * (level_db - self.noise_db)
        if not self.speaking:
            if probability >= threshold:
                self._speech_ms += chunk_ms
                needed = self.barge_in_ms if agent_talking else self.min_speech_ms
                if self._speech_ms >= needed:
                    self.speaking = True
                    self._silence_ms = 0.0
                    return SpeechEdge(True, self._position_ms - self._speech_ms)
            else:
                self._speech_ms = 0.0
            return None
        if probability < threshold - self.hysteresis:
            self._silence_ms += chunk_ms
            limit = self.end_of_turn_agent_ms if agent_talking else self.end_of_turn_ms
            if unfinished:
                limit = max(limit, self.unfinished_wait_ms)
            speech_end = self._position_ms - self._silence_ms
            if self._silence_ms >= limit:
                self.speaking = False
                self._speech_ms = 0.0
                return SpeechEdge(False, speech_end)
            if self._silence_ms - chunk_ms < self.pause_ms <= self._silence_ms:
                return SpeechEdge(False, speech_end, pause=True)
        else:
            paused, self._silence_ms = self._silence_ms >= self.pause_ms, 0.0
            if paused:
                return SpeechEdge(True, self._position_ms - chunk_ms, resumed=True)
        return None
