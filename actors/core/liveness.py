"""Liveness, sans I/O: after every caller turn the caller hears the agent within a bound.

Dead air is a bug whatever its cause (a stalled engine, a reply that streams one
token every three seconds, a server that cut the stream), so the call does not
trust any one stage to keep time. The supervisor tells ``DeadAirWatch`` when a
caller turn ends, when the caller talks again, and when reply audio went out;
on its timer it asks ``check(now)``, which says what to do:

* ``Filler``: nothing audible ``filler_s`` after the end of the turn: a short
  natural filler ("Mm, let me see."), so a reply that is late (a tool, a busy LLM)
  starts with a sound a person would make; the reply follows it, and once the reply's
  audio is ready the filler stops at its next clause's end ("Mm, ...": the playout's
  ``LineYielded``), so a filler never holds an answer back long;
* ``Hold``: nothing audible ``bound_s`` after the end of the turn: say a short
  holding phrase ("One moment, please."), recorded with what the call waited for
  (queued ``hold_lead_s`` early, so that it is heard by the bound); after a filler it
  comes sooner, right after the filler's words (a caller who hears "Mm, let me see."
  and then a second of nothing takes the floor back);
* ``GiveUp``: still nothing ``give_up_s`` later: abandon the pending reply and
  say the fallback line, so the caller is never left waiting on a slow stage.

An answer that has begun can still go quiet before its model is done: the model
writes a tool's arguments after the tool's holding line, the tool runs, the model
words its result, tokens trickle under load. ``QuietWatch`` keeps the same promise
there: ``quiet_s`` of quiet in an answer, the holding line; ``give_up_s`` more, the
fallback, unless a tool is still running (its own timeout ends that wait, with an
apology; meanwhile the holding line again).

Also here: whether a failed LLM attempt is worth one retry (``retry_allowed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from projections.liveness import BOUND_S as BOUND_S  # re-exported: the callers keep time here
from projections.liveness import Liveness

GIVE_UP_S = 5.0  # after the holding line, how long a silent reply may still take
# An answer quiet this long (from its last frame sent, so the caller heard up to the pacer's
# lead less) gets the holding line: past the pauses between its phrases under load
# (bench/load.py's gaps in answers: none of 100 ms at 1-4 calls), well inside the bound.
QUIET_S = 1.2
HOLD_LINE = "One moment, please."
FALLBACK_LINE = "Sorry, I'm having trouble answering right now. Could you say that again?"
# The call cannot go on (its supervisor stalled): said before the gateway hangs up.
FAILED_GOODBYE = "I'm sorry, something went wrong on our side. Please call again. Goodbye."

# What the caller waited for: the transcript, the reply, the rest of a reply that had
# begun to sound, a tool it called.
Waiting = Literal["transcript", "reply", "more", "tool"]


@dataclass(frozen=True)
class Late:
    """The caller has waited ``waited_ms`` since their turn for ``waiting_for`` (and for
    ``reply_id``, once one was asked for)."""

    waited_ms: float
    waiting_for: Waiting
    reply_id: int | None = None
    action: ClassVar[str]
    line: ClassVar[str]


@dataclass(frozen=True)
class Filler(Late):
    """Say the agent's filler (its agent file's, ``Agent.filler``); the reply goes on."""

    action = "filler"
    line = ""


@dataclass(frozen=True)
class Hold(Late):
    """Say the holding line; the reply goes on."""

    action = "hold"
    line = HOLD_LINE


@dataclass(frozen=True)
class GiveUp(Late):
    """Abandon the pending reply and say the fallback line."""

    action = "give_up"
    line = FALLBACK_LINE


@dataclass
class DeadAirWatch:
    bound_s: float = BOUND_S
    give_up_s: float = GIVE_UP_S
    # The holding line is queued this much before the bound, so that it is *heard* by then
    # (the timer, the pacer's lead and the network leg take about a tenth of a second).
    hold_lead_s: float = 0.2
    filler_s: float = 0.0  # 0: no filler
    # How long the filler's words last (0: unknown; the holding line then keeps to the bound)
    # and the quiet after them before the holding line: the voice's own pause between two
    # sentences, far from the second after which a caller takes the floor back. Queued then,
    # the line comes while the filler's trailing silence is still going out, so the filler
    # yields to it and both play as one run: no moment where the phone's buffer runs dry
    # and the playback clock must guess when the next line started.
    filler_speech_s: float = 0.0
    quiet_after_filler_s: float = 0.3
    turn_ended_at: float | None = None  # a caller turn still owed agent audio
    reply_id: int | None = None  # the reply asked for that turn, once there is one
    held: bool = False
    filled_at: float | None = None  # when the filler was said for this turn

    def turn_ended(self, now: float) -> None:
        """The caller finished a turn: the agent owes audio within ``bound_s``."""
        self.turn_ended_at, self.reply_id, self.held, self.filled_at = now, None, False, None

    def reply_requested(self, reply_id: int) -> None:
        if self.turn_ended_at is not None:
            self.reply_id = reply_id

    def settled(self) -> None:
        """Nothing more is owed: reply audio went out, the turn needed no answer (a cough),
        the caller talks again (their next turn re-arms the watch), or the call ended."""
        self.turn_ended_at, self.reply_id, self.held, self.filled_at = None, None, False, None

    def due_at(self) -> float | None:
        """When ``check`` next has something to say (for the caller's timer)."""
        if self.turn_ended_at is None:
            return None
        bound_at = self._bound_at(self.turn_ended_at)
        if self.held:  # the fallback keeps its distance from the bound, filler or not
            return bound_at + self.give_up_s
        if self._filler_owed():
            return min(self.turn_ended_at + self.filler_s, bound_at)
        return self._hold_at(bound_at)

    def _bound_at(self, turn_ended_at: float) -> float:
        """When the holding line is queued at the latest, to be heard by the bound."""
        return turn_ended_at + self.bound_s - self.hold_lead_s

    def _hold_at(self, bound_at: float) -> float:
        if self.filled_at is None or self.filler_speech_s <= 0:
            return bound_at
        after_filler = self.filled_at + self.filler_speech_s + self.quiet_after_filler_s
        return min(bound_at, after_filler - self.hold_lead_s)

    def _filler_owed(self) -> bool:
        return 0 < self.filler_s < self.bound_s and self.filled_at is None and not self.held

    def check(self, now: float) -> Filler | Hold | GiveUp | None:
        due = self.due_at()
        if due is None or now < due:
            return None
        assert self.turn_ended_at is not None
        waited_ms = (now - self.turn_ended_at) * 1000.0
        waiting_for: Waiting = "transcript" if self.reply_id is None else "reply"
        if self._filler_owed() and now < self._bound_at(self.turn_ended_at):
            self.filled_at = now
            return Filler(waited_ms, waiting_for, self.reply_id)
        if not self.held:
            self.held = True
            return Hold(waited_ms, waiting_for, self.reply_id)
        verdict = GiveUp(waited_ms, waiting_for, self.reply_id)
        self.settled()
        return verdict


@dataclass(frozen=True)
class Quiet:
    """An answer the caller has begun to hear (``reply_id``), now quiet: nothing at all has
    gone out since ``since`` (a holding line counts), nothing of the answer itself since
    ``answer_since``; ``tool_running``: a tool it called has not answered yet."""

    reply_id: int
    since: float
    answer_since: float
    tool_running: bool = False

    @classmethod
    def of(cls, state: Liveness, t0: float) -> Quiet | None:
        """From the call's Liveness (its ms counted from ``t0``, the call's start in
        monotonic seconds); None unless an answer is sounding with more to come."""
        if state.sounding is None or state.quiet_from_ms is None:
            return None
        assert state.sounding_audio_ms is not None
        return cls(
            state.sounding,
            since=t0 + state.quiet_from_ms / 1000.0,
            answer_since=t0 + state.sounding_audio_ms / 1000.0,
            tool_running=bool(state.tools_running),
        )


@dataclass
class QuietWatch:
    """The caller is owed more of an answer that went quiet; the supervisor tells it how
    things stand (``update``) each time it checks, and acts on ``check``."""

    quiet_s: float = QUIET_S
    give_up_s: float = GIVE_UP_S
    quiet: Quiet | None = None  # None: no answer is sounding with more to come
    held_at: float | None = None  # when this quiet got its holding line

    def update(self, quiet: Quiet | None) -> None:
        known = self.quiet
        if quiet is None or known is None or quiet.reply_id != known.reply_id:
            self.held_at = None
        elif self.held_at is not None and quiet.answer_since > self.held_at:
            self.held_at = None  # the answer spoke again: a new quiet, a new holding line
        self.quiet = quiet

    def due_at(self) -> float | None:
        if self.quiet is None:
            return None
        return self.quiet.since + (self.quiet_s if self.held_at is None else self.give_up_s)

    def check(self, now: float) -> Hold | GiveUp | None:
        due = self.due_at()
        if due is None or now < due:
            return None
        quiet = self.quiet
        assert quiet is not None
        waited_ms = (now - quiet.answer_since) * 1000.0
        waiting_for: Waiting = "tool" if quiet.tool_running else "more"
        if self.held_at is None or quiet.tool_running:
            self.held_at = now
            return Hold(waited_ms, waiting_for, quiet.reply_id)
        self.quiet, self.held_at = None, None
        return GiveUp(waited_ms, waiting_for, quiet.reply_id)


def retry_allowed(attempt: int, phrases_sent: int, elapsed_s: float, bound_s: float) -> bool:
    """One more try for a failed LLM reply: only the first failure, only before anything of
    the reply was spoken (a retry would repeat it), and only while a fresh answer can still
    beat the holding phrase (the attempt failed fast: an empty reply, a 500, a cut stream)."""
    return attempt == 1 and phrases_sent == 0 and elapsed_s < bound_s / 2
