"""Preemptive generation's decisions (issue 13), sans I/O: the reply is begun at the pause
that may end the caller's turn, adopted when the turn ends with that very transcript, and
dropped unheard when the caller goes on or the turn asks for something else."""

from __future__ import annotations

from actors.core.call_policy import (
    Action,
    Adopt,
    CallPolicy,
    Generate,
    Record,
    Restart,
    Say,
    Speculate,
    Stage,
    StopReply,
    Transcribed,
)
from events.catalogue import (
    ReplySpeculated,
    SpeculationDropped,
    SpeechStopped,
    StageFailed,
    TranscriptFinal,
    TranscriptPartial,
)


def nothing_unheard(_reply_id: int) -> str:
    return ""


def greeted(preemptive: bool = True) -> CallPolicy:
    policy = CallPolicy(preemptive=preemptive)
    policy.greet("Hello.")
    policy.reply_played(1, now=1.0)
    policy.caller_started(1000.0)
    return policy


def at_pause(turn: int, text: str, speech_end_ms: float) -> Transcribed:
    """The STT's transcript of the speech up to a pause (the turn may end there)."""
    return Transcribed(turn, text, 0.05, 1000.0, speech_end_ms, speech_end_ms, tentative=True)


def kinds(actions: list[Action]) -> list[object]:
    return [a.kind if isinstance(a, Record) else type(a) for a in actions]


def test_the_reply_begun_at_the_pause_answers_the_turn_that_ends_there() -> None:
    policy = greeted()
    pause = at_pause(1, "A table for two tonight, please.", 2500.0)
    begun = policy.transcribed(pause, nothing_unheard)
    assert kinds(begun) == [TranscriptPartial, ReplySpeculated, Speculate]
    assert begun[-1] == Speculate(2, 1, "A table for two tonight, please.")
    assert not policy.agent_talking  # nothing holds the floor yet: no barge-in to detect
    ended = policy.caller_stopped(2500.0, 2.8, nothing_unheard)
    assert kinds(ended)[-2:] == [TranscriptFinal, Adopt]
    assert ended[-1] == Adopt(2, 1) and policy.agent_talking
    assert Generate not in kinds(ended)


def test_a_caller_who_goes_on_after_the_pause_drops_it_unheard() -> None:
    policy = greeted()
    policy.transcribed(at_pause(1, "A table for two", 2500.0), nothing_unheard)
    dropped = policy.caller_resumed(2700.0)
    assert dropped == [
        Record(SpeculationDropped, {"reply_id": 2, "reason": "the caller went on"}),
        StopReply(2),
    ]
    ended = policy.caller_stopped(4000.0, 4.3, nothing_unheard)  # later: its own transcript
    assert kinds(ended) == [SpeechStopped]  # the turn's transcript is not in yet
    final = Transcribed(1, "A table for two at eight", 0.05, 1000.0, 4000.0, 4000.0)
    answered = policy.transcribed(final, nothing_unheard)
    assert answered[-1] == Generate(3, 1)  # a new reply: the dropped one is never spoken


def test_a_turn_that_ends_past_a_later_pause_drops_the_first_reply() -> None:
    policy = greeted()
    policy.transcribed(at_pause(1, "A table", 2000.0), nothing_unheard)
    again = policy.transcribed(at_pause(1, "A table for two", 2600.0), nothing_unheard)
    assert kinds(again) == [
        TranscriptPartial,
        SpeculationDropped,
        StopReply,
        ReplySpeculated,
        Speculate,
    ]
    ended = policy.caller_stopped(2600.0, 2.9, nothing_unheard)
    assert ended[-1] == Adopt(3, 1)


def test_no_reply_is_begun_for_a_goodbye_a_noise_a_doubt_a_busy_model_or_when_off() -> None:
    for text, nsp, logprob in (
        ("Thanks, bye.", 0.05, -0.2),
        ("", 0.9, -0.2),
        ("Work a table to hide", 0.05, -1.5),
    ):
        policy = greeted()
        pause = Transcribed(
            1, text, nsp, 1000.0, 2500.0, 2500.0, tentative=True, avg_logprob=logprob
        )
        assert not [
            a for a in policy.transcribed(pause, nothing_unheard) if isinstance(a, Speculate)
        ]
    busy = greeted()  # the model is busy with another call's reply: nothing is begun
    pause = at_pause(1, "A table for two", 2500.0)
    assert kinds(busy.transcribed(pause, nothing_unheard, llm_has_room=False)) == [
        TranscriptPartial
    ]
    assert busy.caller_stopped(2500.0, 2.8, nothing_unheard)[-1] == Generate(2, 1)
    off = greeted(preemptive=False)
    pause = at_pause(1, "A table for two", 2500.0)
    assert kinds(off.transcribed(pause, nothing_unheard)) == [TranscriptPartial]
    assert off.caller_stopped(2500.0, 2.8, nothing_unheard)[-1] == Generate(2, 1)


def test_a_pause_transcribed_after_the_caller_went_on_begins_nothing() -> None:
    policy = greeted()
    assert policy.caller_resumed(2700.0) == []  # nothing begun yet: the STT was busy
    late = policy.transcribed(at_pause(1, "A table for two", 2500.0), nothing_unheard)
    assert kinds(late) == [TranscriptPartial]


def test_a_crash_on_a_reply_begun_at_a_pause_is_restarted_without_an_apology() -> None:
    policy = greeted()
    policy.transcribed(at_pause(1, "A table for two", 2500.0), nothing_unheard)
    # A crash names no reply (the actor died, not a request): the begun one was its work.
    failed = policy.stage_failed(Stage.LLM, None, "injected", crashed=True)
    assert kinds(failed) == [StageFailed, Restart, SpeculationDropped, StopReply]
    assert failed[0] == Record(
        StageFailed, {"stage": Stage.LLM, "error": "injected", "action": "dropped", "reply_id": 2}
    )
    assert Say not in kinds(failed)  # the caller was promised nothing yet
    assert policy.caller_stopped(2500.0, 2.8, nothing_unheard)[-1] == Generate(3, 1)


def test_a_crashed_tts_restarts_the_llm_and_so_drops_the_reply_begun_at_a_pause() -> None:
    policy = greeted()
    policy.transcribed(at_pause(1, "A table for two", 2500.0), nothing_unheard)
    failed = policy.stage_failed(Stage.TTS, None, "injected", crashed=True)
    assert Restart(Stage.TTS) in failed and StopReply(2) in failed
    assert SpeculationDropped in kinds(failed) and Say not in kinds(failed)
    # The end of turn asks the new Llm: no hold released that nobody waits on.
    assert policy.caller_stopped(2500.0, 2.8, nothing_unheard)[-1] == Generate(3, 1)


def test_the_end_of_the_call_drops_a_reply_begun_at_a_pause() -> None:
    policy = greeted()
    policy.transcribed(at_pause(1, "A table for two", 2500.0), nothing_unheard)
    ended = policy.end("caller hung up")
    assert StopReply(2) in ended and SpeculationDropped in kinds(ended)
