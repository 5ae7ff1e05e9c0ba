"""How a call ends or is handed on, decided without threads or sockets: the caller's silence,
their goodbye, a request for a person, and the keypad (issue 12)."""

from __future__ import annotations

from actors.core.agent import Agent, Silence
from actors.core.call_policy import (
    KEYPAD_TURN,
    Action,
    CallPolicy,
    EndCall,
    Generate,
    Record,
    Say,
    StopReply,
    Transcribed,
)
from events.catalogue import CallerSilent, CallTransferred, TranscriptFinal

DESK = "+15005550006"
AGENT = Agent(
    name="test",
    system_prompt="",
    greeting="Hello.",
    transfer_targets={"desk": DESK, "kitchen": "sip:kitchen@example.com"},
    digits={"0": "transfer", "7": "transfer:kitchen", "9": "end_call"},
)


def nothing_unheard(reply_id: int) -> str:
    return ""


def greeted(agent: Agent = AGENT) -> CallPolicy:
    policy = CallPolicy(agent=agent)
    policy.greet(agent.greeting)
    return policy


def says(policy: CallPolicy, text: str, at_s: float, turn: int = 1) -> list[Action]:
    """The caller says ``text``, ending at ``at_s``: the actions once the turn is in."""
    inbound_ms = at_s * 1000.0
    policy.caller_started(inbound_ms - 1000.0)
    policy.transcribed(
        Transcribed(turn, text, 0.0, inbound_ms - 1000.0, inbound_ms, inbound_ms), nothing_unheard
    )
    return policy.caller_stopped(inbound_ms, at_s, nothing_unheard)


def recorded(actions: list[Action], kind: type) -> list[dict[str, object]]:
    return [a.fields for a in actions if isinstance(a, Record) and a.kind is kind]


def said(actions: list[Action]) -> list[Say]:
    return [a for a in actions if isinstance(a, Say)]


# --- silence ---------------------------------------------------------------------------------


def test_silence_after_the_greeting_reprompts_at_8_s_and_hangs_up_at_20_s() -> None:
    policy = greeted()
    assert policy.reply_played(1, now=100.0) == []
    assert policy.due_at() == 108.0
    assert policy.check_liveness(107.9, audio_since_turn=False) == []
    reprompt = policy.check_liveness(108.0, audio_since_turn=False)
    assert recorded(reprompt, CallerSilent) == [{"action": "reprompt", "silent_ms": 8000.0}]
    assert said(reprompt) == [Say(2, "Are you still there?", "reprompt")]
    assert policy.reply_played(2, now=109.5) == []  # the reprompt heard: the clock runs on
    assert policy.due_at() == 120.0
    goodbye = policy.check_liveness(120.0, audio_since_turn=False)
    assert recorded(goodbye, CallerSilent) == [{"action": "hang_up", "silent_ms": 20000.0}]
    assert said(goodbye) == [Say(3, AGENT.silence.goodbye, "goodbye", fixed=True)]
    assert policy.check_liveness(140.0, audio_since_turn=False) == []  # said once
    assert policy.reply_played(3, now=124.0) == [EndCall("caller silent")]  # heard in full


def test_the_caller_speaking_stops_the_silence_clock_and_an_answer_keeps_it_stopped() -> None:
    policy = greeted()
    policy.reply_played(1, now=100.0)
    policy.caller_started(5000.0)
    assert policy.due_at() is None
    policy.transcribed(Transcribed(1, "A table please", 0.0, 4000, 6000, 6000), nothing_unheard)
    actions = policy.caller_stopped(6000.0, 106.0, nothing_unheard)
    assert isinstance(actions[-1], Generate)
    assert policy.silence.due_at() is None  # the agent owes the answer: not the caller's silence
    policy.reply_played(2, now=110.0)
    assert policy.silence.due_at() == 118.0  # counted from the answer's end


def test_a_reprompted_caller_who_answers_starts_a_fresh_silence() -> None:
    policy = greeted()
    policy.reply_played(1, now=0.0)
    policy.check_liveness(8.0, audio_since_turn=False)
    policy.reply_played(2, now=9.5)
    policy.caller_started(10_000.0)
    policy.caller_stopped(10_500.0, 10.5, nothing_unheard)  # no transcript: noise
    assert policy.silence.due_at() == 18.5  # a reprompt again, 8 s on, not the hang-up


def test_custom_silences_from_the_agent_file() -> None:
    agent = Agent(
        name="t", system_prompt="", greeting="Hi.", silence=Silence(reprompt_s=3, hangup_s=5)
    )
    policy = greeted(agent)
    policy.reply_played(1, now=0.0)
    assert policy.due_at() == 3.0
    policy.check_liveness(3.0, audio_since_turn=False)
    assert policy.due_at() == 5.0


def test_a_listening_only_call_never_reprompts() -> None:
    policy = CallPolicy(converses=False, agent=AGENT)
    policy.greet("Hello.")
    policy.reply_played(1, now=0.0)
    assert policy.check_liveness(60.0, audio_since_turn=False) == []


# --- goodbye and transfer by request ------------------------------------------------------------


def test_the_callers_goodbye_is_answered_with_the_agents_then_the_call_ends() -> None:
    policy = greeted()
    policy.reply_played(1, now=1.0)
    actions = says(policy, "Thanks, bye.", at_s=5.0)
    assert recorded(actions, TranscriptFinal)[0]["text"] == "Thanks, bye."
    assert not any(isinstance(a, Generate) for a in actions)
    assert said(actions) == [Say(2, AGENT.goodbye, "goodbye", fixed=True)]
    assert policy.reply_played(2, now=7.0) == [EndCall("caller said goodbye")]


def test_a_request_for_a_person_is_put_through_to_the_first_target() -> None:
    policy = greeted()
    policy.reply_played(1, now=1.0)
    actions = says(policy, "Could I speak to a real person, please?", at_s=5.0)
    assert recorded(actions, CallTransferred) == [{"target": DESK, "reason": "caller asked"}]
    assert said(actions) == [Say(2, AGENT.transferring, "goodbye", fixed=True)]
    assert policy.caller_started(6000.0)[1:] == []  # the line is said in full, no barge-in
    assert policy.reply_played(2, now=9.0) == [EndCall("transferred")]


def test_without_a_transfer_target_the_model_answers_the_request() -> None:
    policy = greeted(Agent(name="t", system_prompt="", greeting="Hi."))
    policy.reply_played(1, now=1.0)
    actions = says(policy, "Can I talk to someone?", at_s=5.0)
    assert isinstance(actions[-1], Generate)


# --- the keypad --------------------------------------------------------------------------------


def test_a_mapped_key_transfers_to_its_target_cutting_in_on_the_agent() -> None:
    policy = greeted()  # the greeting still plays
    actions = policy.key_pressed("7", now=2.0)
    assert actions[0] == Record(
        CallTransferred, {"target": "sip:kitchen@example.com", "reason": "caller pressed 7"}
    )
    assert StopReply(1, clear=True) in actions
    assert said(actions) == [Say(2, AGENT.transferring, "goodbye", fixed=True)]
    assert policy.key_pressed("0", now=2.5) == []  # already being put through


def test_zero_transfers_to_the_default_target_and_nine_ends_the_call() -> None:
    policy = greeted()
    policy.reply_played(1, now=1.0)
    assert recorded(policy.key_pressed("0", now=2.0), CallTransferred)[0]["target"] == DESK
    ending = greeted()
    ending.reply_played(1, now=1.0)
    actions = ending.key_pressed("9", now=2.0)
    assert said(actions) == [Say(2, AGENT.goodbye, "goodbye", fixed=True)]
    assert ending.reply_played(2, now=4.0) == [EndCall("caller pressed 9")]


def test_an_unmapped_key_reaches_the_model_as_a_turn_and_cuts_in() -> None:
    policy = greeted()
    actions = policy.key_pressed("1", now=2.0)
    assert actions == [StopReply(1, clear=True), Generate(2, KEYPAD_TURN)]
    assert policy.watch.due_at() is not None  # the answer is owed within the bound
