"""Turn-taking decisions, sans I/O: who holds the floor, and what to do when that changes.

The supervisor feeds it what happened (a reply started, finished playing, the
caller started or stopped speaking) and carries out the actions it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

NO_SPEECH_ABOVE = 0.8  # Whisper's no-speech probability past which a "transcript" is noise


@dataclass(frozen=True)
class BargeIn:
    """The caller talked over the agent: cancel and clear ``reply_id``."""

    reply_id: int
    inbound_ms: float


@dataclass
class TurnTaking:
    agent_reply: int | None = None  # the reply holding the floor (generating or playing)
    caller_speaking: bool = False
    next_reply_id: int = 1
    interrupted_reply: int | None = None  # cut by the caller; theirs is the next word

    def take_interrupted(self) -> int | None:
        """The reply the caller's finished turn interrupted, if any (asked once)."""
        reply_id, self.interrupted_reply = self.interrupted_reply, None
        return reply_id

    def start_reply(self) -> int:
        reply_id = self.start_aside()
        self.agent_reply = reply_id
        return reply_id

    def take_floor(self, reply_id: int) -> None:
        """A reply reserved earlier (``start_aside``) becomes the one holding the floor."""
        self.agent_reply = reply_id

    def start_aside(self) -> int:
        """A line said while the floor's reply is still coming (a holding line): it does not
        take the floor, so the reply it covers for is still the one a barge-in cancels."""
        reply_id = self.next_reply_id
        self.next_reply_id += 1
        return reply_id

    def reply_played(self, reply_id: int) -> None:
        if self.agent_reply == reply_id:
            self.agent_reply = None

    def caller_started(self, inbound_ms: float) -> BargeIn | None:
        self.caller_speaking = True
        if self.agent_reply is None:
            return None
        reply_id, self.agent_reply = self.agent_reply, None
        self.interrupted_reply = reply_id
        return BargeIn(reply_id, inbound_ms)

    def caller_stopped(self) -> None:
        self.caller_speaking = False


@dataclass
class TranscriptGate(Generic[T]):
    """Pairs a confirmed end of turn with the transcript of exactly that speech.

    Transcription starts speculatively at a pause in the caller's speech. If the
    caller talks on, that transcript covers too little and must not answer the
    turn; it is recognised by its speech end, which differs from the turn's. The
    reply may start when both are in, whichever arrives second.
    """

    _latest: tuple[float, T] | None = None  # (speech end, transcript), newest only
    _waiting_for: float | None = None  # an ended turn's speech end, transcript not yet in

    def transcribed(self, speech_end_ms: float, transcript: T) -> T | None:
        if self._waiting_for == speech_end_ms:
            self._waiting_for = None
            return transcript
        self._latest = (speech_end_ms, transcript)
        return None

    def turn_ended(self, speech_end_ms: float) -> T | None:
        latest, self._latest = self._latest, None
        if latest is not None and latest[0] == speech_end_ms:
            self._waiting_for = None
            return latest[1]
        self._waiting_for = speech_end_ms
        return None


# What a caller says over the agent that asks for nothing: keep talking.
BACKCHANNELS = (
    "uh huh", "uh-huh", "mm-hmm", "mm-hm", "mhm", "mm", "hmm", "okay", "ok", "yeah", "yes",
    "yep", "yup", "right", "sure", "alright", "all right", "i see", "got it",
)  # fmt: skip
# What a caller says to take the floor without asking anything yet: acknowledge.
ATTENTION = (
    "excuse me", "one question", "quick question", "one second", "one moment",
    "just a moment", "hold on", "hang on", "sorry", "wait", "stop", "actually", "hey",
    "um", "uh", "so",
)  # fmt: skip

Interruption = Literal["resume", "acknowledge", "answer"]


def _made_of(words: str, phrases: tuple[str, ...]) -> bool:
    """Is ``words`` nothing but ``phrases``, one after another (longest first)?"""
    ordered = sorted(phrases, key=len, reverse=True)
    while words:
        taken = next((p for p in ordered if words == p or words.startswith(p + " ")), None)
        if taken is None:
            return False
        words = words[len(taken) :].strip()
    return True


def interruption_kind(text: str, no_speech_probability: float) -> Interruption:
    """What to do once the caller who cut the agent off has finished.

    * ``resume``: noise, or only backchannels ("okay", "yeah, yeah"): the agent
      carries on from the first word the caller did not hear.
    * ``acknowledge``: only words that take the floor ("wait", "sorry, one
      question"): a short "yes?" invites the request, without repeating anything.
    * ``answer``: anything else (a request, a question, "no"): a new reply, from
      the heard context.
    """
    words = " ".join(re.sub(r"[^a-z' -]", " ", text.lower()).split())
    if not words or no_speech_probability > NO_SPEECH_ABOVE or _made_of(words, BACKCHANNELS):
        return "resume"
    if _made_of(words, ATTENTION + BACKCHANNELS):
        return "acknowledge"
    return "answer"
