"""The call's decisions, without threads or sockets: observations in, actions out."""

from __future__ import annotations

from actors.core.agent import Agent
from actors.core.call_policy import (
    ACKNOWLEDGEMENT,
    APOLOGY,
    DRAIN_GOODBYE,
    TIME_LIMIT_GOODBYE,
    Action,
    CallPolicy,
    EndCall,
    Generate,
    Record,
    Restart,
    Say,
    Stage,
    StopReply,
    Transcribed,
)
from actors.core.liveness import FALLBACK_LINE, HOLD_LINE
from events.catalogue import (
    BargeInDetected,
    SilenceFilled,
    StageCancelled,
    StageFailed,
    TranscriptFinal,
    TranscriptPartial,
    TurnNotAnswered,
)

UNHEARD = {1: "the rest of the greeting"}


def unheard(reply_id: int) -> str:
    return UNHEARD.get(reply_id, "")


def transcript(text: str, end_ms: float, turn: int = 1, no_speech: float = 0.0) -> Transcribed:
    return Transcribed(turn, text, no_speech, end_ms - 1000.0, end_ms, end_ms)


def kinds(actions: list[Action]) -> list[str]:
    return [a.kind.__name__ if isinstance(a, Record) else type(a).__name__ for a in actions]


def records(actions: list[Action], kind: type) -> list[Record]:
    return [a for a in actions if isinstance(a, Record) and a.kind is kind]


def greeted() -> CallPolicy:
    policy = CallPolicy()
    (say,) = policy.greet("Hello.")
    assert say == Say(1, "Hello.", "greeting") and policy.agent_talking
    return policy


def test_a_turn_is_answered_once_its_end_and_its_transcript_are_both_in() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(5000.0)
    assert policy.transcribed(transcript("I'd like a table", 6000.0), unheard) == []
    actions = policy.caller_stopped(6000.0, now=10.0, unheard=unheard)
    assert kinds(actions) == ["SpeechStopped", "TranscriptFinal", "Generate"]
    assert actions[-1] == Generate(2, caller_turn=1) and policy.agent_talking
    assert policy.watch.due_at() is not None  # the agent owes audio within the bound


def test_a_transcript_of_speech_that_went_on_never_answers_the_turn() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(5000.0)
    policy.transcribed(transcript("I'd like", 5600.0), unheard)  # at a pause; they talked on
    assert kinds(policy.caller_stopped(7000.0, 10.0, unheard)) == ["SpeechStopped"]
    actions = policy.transcribed(transcript("I'd like a table for two", 7000.0), unheard)
    assert kinds(actions) == ["TranscriptFinal", "Generate"]


def test_rolling_partials_are_recorded_and_never_answer() -> None:
    policy = greeted()
    rolling = Transcribed(1, "I'd", 0.0, 0.0, 900.0, 900.0, tentative=True, rolling=True)
    actions = policy.transcribed(rolling, unheard)
    assert kinds(actions) == ["TranscriptPartial"]
    assert records(actions, TranscriptPartial)[0].fields["rolling"] is True


def test_noise_is_owed_no_answer() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(5000.0)
    policy.transcribed(transcript("", 5300.0), unheard)
    actions = policy.caller_stopped(5300.0, 10.0, unheard)
    assert kinds(actions) == ["SpeechStopped", "TurnNotAnswered"]
    assert policy.watch.due_at() is None and not policy.agent_talking
    mumble = transcript("thanks", 8000.0, turn=2, no_speech=0.9)  # Whisper's no-speech > 0.8
    policy.caller_started(7500.0)
    policy.transcribed(mumble, unheard)
    assert kinds(policy.caller_stopped(8000.0, 13.0, unheard)) == [
        "SpeechStopped",
        "TurnNotAnswered",
    ]


def test_a_listen_only_call_records_each_turn_unanswered() -> None:
    policy = CallPolicy(converses=False)
    policy.greet("Hello.")
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    actions = policy.caller_stopped(4000.0, 5.0, unheard)
    assert records(actions, TurnNotAnswered)[0].fields["reason"] == "listening_only"
    assert policy.watch.due_at() is None


def test_a_barge_in_stops_and_clears_the_reply_holding_the_floor() -> None:
    policy = greeted()
    actions = policy.caller_started(1200.0)
    assert kinds(actions) == ["SpeechStarted", "BargeInDetected", "StopReply"]
    assert records(actions, BargeInDetected)[0].fields == {"reply_id": 1, "inbound_ms": 1200.0}
    assert actions[-1] == StopReply(1, clear=True) and not policy.agent_talking


def test_after_a_backchannel_the_agent_resumes_from_the_first_unheard_word() -> None:
    policy = greeted()
    policy.caller_started(1200.0)
    policy.transcribed(transcript("okay", 1600.0), unheard)
    actions = policy.caller_stopped(1600.0, 2.0, unheard)
    assert actions[-1] == Say(2, "the rest of the greeting", "resume")


def test_after_wait_the_agent_acknowledges_and_after_a_question_it_answers() -> None:
    policy = greeted()
    policy.caller_started(1200.0)
    policy.transcribed(transcript("wait", 1600.0), unheard)
    assert policy.caller_stopped(1600.0, 2.0, unheard)[-1] == Say(2, ACKNOWLEDGEMENT, "acknowledge")
    policy = greeted()
    policy.caller_started(1200.0)
    policy.transcribed(transcript("do you have parking", 2600.0), unheard)
    assert policy.caller_stopped(2600.0, 3.0, unheard)[-1] == Generate(2, caller_turn=1)


def test_a_crashed_stage_is_restarted_its_reply_stopped_and_apologised_for() -> None:
    policy = greeted()
    actions = policy.stage_failed(Stage.TTS, None, "RuntimeError('boom')", crashed=True)
    assert kinds(actions) == ["StageFailed", "Restart", "StopReply", "StageCancelled", "Say"]
    assert records(actions, StageFailed)[0].fields["action"] == "apologise"
    assert Restart(Stage.TTS) in actions and StopReply(1) in actions
    assert records(actions, StageCancelled)[0].fields == {"stage": Stage.TTS, "reply_id": 1}
    assert actions[-1] == Say(2, APOLOGY, "apology")


def test_a_lost_transcript_is_apologised_for_once_the_caller_stops() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    actions = policy.stage_failed(Stage.STT, None, "timed out after 5.0 s", crashed=True)
    assert kinds(actions) == ["StageFailed", "Restart"]  # not over the caller
    assert policy.caller_stopped(4000.0, 5.0, unheard)[-1] == Say(2, APOLOGY, "apology")


def test_a_failed_transport_or_a_third_failure_ends_the_call() -> None:
    policy = greeted()
    actions = policy.stage_failed(Stage.TRANSPORT, None, "boom", crashed=True)
    assert kinds(actions) == ["StageFailed", "StopReply", "EndCall"]
    assert actions[-1] == EndCall("transport failed") and policy.ended
    policy = greeted()
    for _ in range(2):
        assert records(policy.stage_failed(Stage.LLM, None, "500", crashed=False), StageFailed)
    assert policy.stage_failed(Stage.LLM, None, "500", crashed=False)[-1] == EndCall(
        "llm failed 3 times"
    )


def test_silence_after_a_turn_gets_a_filler_the_holding_line_then_the_fallback() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    policy.transcribed(transcript("a table please", 4000.0), unheard)
    policy.caller_stopped(4000.0, now=100.0, unheard=unheard)  # asks reply 2
    assert policy.check_liveness(100.4, audio_since_turn=False) == []  # not due yet
    filler = policy.check_liveness(100.5, audio_since_turn=False)
    assert records(filler, SilenceFilled)[0].fields["action"] == "filler"
    assert filler[-1] == Say(3, policy.agent.filler, "filler", fixed=True, yields=True)
    assert policy.check_liveness(101.0, audio_since_turn=False) == []  # a filler is no answer
    hold = policy.check_liveness(102.4, audio_since_turn=False)
    assert records(hold, SilenceFilled)[0].fields["action"] == "hold"
    assert hold[-1] == Say(4, HOLD_LINE, "hold", fixed=True, yields=True)
    assert policy.turns.agent_reply == 2  # asides: the reply still holds the floor
    give_up = policy.check_liveness(107.4, audio_since_turn=False)
    assert kinds(give_up) == ["SilenceFilled", "StopReply", "StageCancelled", "Say"]
    assert give_up[-1] == Say(5, FALLBACK_LINE, "fallback", fixed=True)


def test_no_filler_when_the_agent_file_says_none() -> None:
    policy = CallPolicy(agent=Agent(name="t", system_prompt="", greeting="", filler_after_s=0))
    policy.greet("Hello.")
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    policy.transcribed(transcript("a table please", 4000.0), unheard)
    policy.caller_stopped(4000.0, now=100.0, unheard=unheard)
    assert policy.due_at() == 102.3 and policy.check_liveness(102.0, False) == []


def test_audio_of_the_answer_settles_the_watch() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    policy.transcribed(transcript("a table please", 4000.0), unheard)
    policy.caller_stopped(4000.0, now=100.0, unheard=unheard)
    assert policy.check_liveness(101.0, audio_since_turn=True) == []
    assert policy.watch.due_at() is None


def test_the_call_ends_once_stopping_the_reply_in_flight() -> None:
    policy = greeted()
    assert policy.end("caller hung up") == [StopReply(1), EndCall("caller hung up")]
    assert policy.end("stream closed") == []


def test_a_failure_that_names_no_reply_is_charged_to_the_reply_holding_the_floor() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    policy.caller_started(3000.0)
    policy.transcribed(transcript("a table please", 4000.0), unheard)
    policy.caller_stopped(4000.0, now=100.0, unheard=unheard)
    actions = policy.stage_failed(Stage.STT, None, "late crash", crashed=True)
    # A crash names no reply; reply 2 held the floor: it is stopped and apologised for.
    assert kinds(actions) == ["StageFailed", "Restart", "StopReply", "StageCancelled", "Say"]
    assert records(actions, TranscriptFinal) == []


def test_a_drain_stops_the_reply_says_goodbye_and_ends_once_it_is_heard() -> None:
    policy = greeted()  # the greeting (reply 1) is still playing
    actions = policy.drain()
    assert actions == [StopReply(1, clear=True), Say(2, DRAIN_GOODBYE, "goodbye", fixed=True)]
    assert policy.drain() == []  # once
    assert kinds(policy.caller_started(9000.0)) == ["SpeechStarted"]  # no barge-in on it
    policy.transcribed(transcript("wait what", 9800.0), unheard)
    assert kinds(policy.caller_stopped(9800.0, 20.0, unheard)) == ["SpeechStopped"]  # no answer
    assert policy.reply_played(1, 0.0) == []
    assert policy.reply_played(2, 0.0) == [EndCall("gateway draining")] and policy.ended


def test_near_the_time_limit_the_caller_hears_so_and_the_call_ends() -> None:
    policy = greeted()
    policy.reply_played(1, 0.0)
    assert policy.time_limit() == [Say(2, TIME_LIMIT_GOODBYE, "goodbye", fixed=True)]
    assert policy.drain() == []  # one goodbye
    assert policy.reply_played(2, 0.0) == [EndCall("call time limit")]


def test_a_failed_transcript_the_caller_has_spoken_past_is_not_apologised_for() -> None:
    """The caller spoke again while the STT was stuck on their last turn: the newer turn is
    being transcribed, and answers them; an apology would talk over it."""
    policy = greeted()
    policy.reply_played(1, 0.0)
    actions = policy.stage_failed(Stage.STT, None, "timed out", crashed=True, superseded=True)
    assert kinds(actions) == ["StageFailed", "Restart"]
    assert records(actions, StageFailed)[0].fields["action"] == "superseded"
    assert not policy.apology_owed
