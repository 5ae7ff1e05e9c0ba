"""A real spoken conversation on CPU: simulated caller <-> gateway with the embedded models.

Three caller turns, spoken by the neural TTS voice and carried as 8 kHz mu-law,
each after the agent goes quiet. Through the Context projection (what the LLM
remembers): each caller turn was transcribed within 25 % WER and got a spoken,
heard reply on the topic asked about. The first turn (about 3 s) is transcribed
while it is still being spoken, too: a rolling partial before its end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator

import jiwer
import pytest
from sqlalchemy import select

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from events.catalogue import (
    AnyEvent,
    BargeInDetected,
    CallEnded,
    ReplyCompleted,
    ReplyRequested,
    SpeechStopped,
    SpeechSynthesized,
    StageCancelled,
    ToolCalled,
    ToolResult,
    TranscriptFinal,
    TranscriptPartial,
)
from events.database import create_engine
from gateway.app import EarshotApp
from gateway.booking_service import bookings_table
from gateway.config import Settings
from gateway.simulate import SimulatedCaller, Utterance, voice_to_voice_ms
from projections.context import context_messages
from projections.replay import fold_all
from tests.gateway.scripted import (
    ask_then_cut_in,
    no_empty_completed_reply,
    nothing_of_the_reply_after_its_clear,
)
from tests.support.gateway import AUTH_TOKEN, running_gateway, sqlite_file_bytes, stored_call
from tests.support.voices import spoken

# Each turn's words that only an answer to *that* question would use: none of the
# system prompt's words (a reply that restates the prompt, or the greeting, answers no
# question), except the prompt's facts that are the answer ("22" to the closing time,
# "seafood" to "do you serve fish"), and no word shared between turns, so a reply to
# the wrong question fails too. `test_the_topic_words_tell_answers_apart` checks this.
ANSWER_FACTS = {"22", "seafood"}
TURNS = [
    (
        "I would like to book a table for two people tonight.",
        {
            "book",
            "booked",
            "booking",
            "reservation",
            "reserve",
            "reserved",
            "tonight",
            "people",
            "party",
            "guests",
            "name",
            "time",
            "seven",
            "eight",
            "evening",
            "available",
            "confirm",
            "confirmed",
        },
    ),
    (
        "What time do you close on Sunday?",
        {"close", "closes", "closing", "closed", "sunday", "sundays", "22", "ten", "10", "pm"},
    ),
    (
        "Do you serve fish?",
        {
            "fish",
            "seafood",
            "serve",
            "serves",
            "menu",
            "dish",
            "dishes",
            "salmon",
            "cod",
            "haddock",
            "tuna",
            "shellfish",
            "oysters",
            "mussels",
            "prawns",
            "crab",
            "lobster",
            "catch",
        },
    ),
]


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_the_topic_words_tell_answers_apart() -> None:
    """The on-topic check fails for a reply that ignores the question (planted: the greeting,
    the system prompt read back) and for a reply to another turn's question."""
    settings = Settings()
    prompt = words(settings.agent.system_prompt)
    for _, topic in TURNS:
        assert topic & prompt <= ANSWER_FACTS, topic & prompt
        assert not topic & words(settings.agent.greeting)
        assert not topic & words("Hello, how can I help you today? Is there anything else?")
    for (_, one), (_, other) in itertools.combinations(TURNS, 2):
        assert not one & other, one & other


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EarshotApp]]:
    db = tmp_path_factory.mktemp("talk") / "calls.db"
    # The embedded models as `make run` has them; four lines, for four simultaneous callers.
    with running_gateway(f"sqlite+aiosqlite:///{db}", max_calls=4) as running:
        yield running


async def test_a_three_turn_spoken_conversation(gateway: tuple[str, EarshotApp]) -> None:
    base, app = gateway
    voice = HibariEngine()
    script = []
    for said, _ in TURNS:
        phrase = voice.synthesize(said)
        script.append(
            Utterance(
                phrase_to_mulaw(phrase.samples, phrase.rate), text=said, after_agent_quiet_ms=800.0
            )
        )
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=60.0)
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    messages = context_messages(fold_all(events).heard)

    # The caller's turns (a tool's answer reaches the model as a user message too), each
    # answered on its topic by what the agent said before the caller's next turn.
    caller_turns = [
        i
        for i, m in enumerate(messages)
        if m.role == "user" and not m.content.startswith("<tool_response>")
    ]
    assert len(caller_turns) == 3, messages
    for (said, topic), index, end in zip(
        TURNS, caller_turns, [*caller_turns[1:], len(messages)], strict=True
    ):
        heard = messages[index].content
        assert jiwer.wer(normalise(said), normalise(heard)) <= 0.25, (said, heard)
        replies = [m.content for m in messages[index + 1 : end] if m.role == "assistant"]
        said_aloud = " ".join(r for r in replies if not r.startswith("<tool_call>"))
        assert words(said_aloud) & topic, (said, replies)
    assert len(voice_to_voice_ms(truth)) >= 3
    rolling_partials_came_while_the_caller_spoke(events)
    # Encrypted at rest: neither side's words, nor the caller's number, are in the files.
    spoken_texts = [
        e.text for e in events if isinstance(e, TranscriptFinal | SpeechSynthesized)
    ] + [caller.from_number]
    on_disk = sqlite_file_bytes(app.settings.db_url)
    assert len(spoken_texts) >= 7 and not [t for t in spoken_texts if t.encode() in on_disk]


SIMULTANEOUS = [
    "Could I book a table for four on Friday?",
    "What time do you open on Saturday?",
    "Do you have a vegetarian dish?",
    "Is there parking near the restaurant?",
]
INTERNAL = ("interrupted you", "[", "]", "assistant:", "user:", "caller:")


async def test_four_callers_asking_at_the_same_moment_all_hear_an_answer(
    gateway: tuple[str, EarshotApp],
) -> None:
    """The embedded LLM serves several calls at once: no request cuts another's reply
    (llama.cpp's server used to end a stream whenever another request arrived, and the
    reply was read as finished and empty: the caller was left in silence)."""
    base, app = gateway
    callers = [
        SimulatedCaller(
            base,
            auth_token=AUTH_TOKEN,
            script=[Utterance(spoken(question), at_s=6.0, text=question)],
            hang_up_after_s=22.0,
        )
        for question in SIMULTANEOUS
    ]
    truths = await asyncio.gather(*(c.run() for c in callers))
    for truth in truths:
        events = await stored_call(app, truth.call_sid)
        turns = fold_all(events).heard.agent_turns()
        answers = [t for t in turns if t.reason == "caller_turn" and t.heard_text]
        assert answers, [(t.reason, t.generated_text, t.heard_text) for t in turns]
        for turn in turns:
            assert not any(bit in turn.heard_text.lower() for bit in INTERNAL), turn.heard_text
        no_empty_completed_reply(events)
        assert voice_to_voice_ms(truth), "the caller heard nothing after asking"


def rolling_partials_came_while_the_caller_spoke(events: list[AnyEvent]) -> None:
    first_end = next(e for e in events if isinstance(e, SpeechStopped))
    final = next(e for e in events if isinstance(e, TranscriptFinal) and e.turn == 1)
    rolling = [
        e
        for e in events
        if isinstance(e, TranscriptPartial) and e.rolling and e.seq < first_end.seq
    ]
    assert rolling, "no partial transcript while the first turn was spoken"
    assert all(p.turn == 1 and p.inbound_end_ms < first_end.inbound_ms for p in rolling)
    so_far = words(rolling[0].text)
    assert len(so_far & words(final.text)) >= len(so_far) / 2, (rolling[0].text, final.text)


@pytest.fixture(scope="module")
def talkative_gateway(
    gateway: tuple[str, EarshotApp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, EarshotApp]]:
    """The same embedded LLM server, told to answer at length: a reply streams for several
    seconds, so a caller who cuts in always lands while it is still being generated."""
    _, app = gateway
    db = tmp_path_factory.mktemp("talkative") / "calls.db"
    with running_gateway(
        f"sqlite+aiosqlite:///{db}",
        llm_url=app.services.llm_servers[0].url,
        system_prompt=(
            "You are the phone receptionist of The Harbour, a seafood restaurant. Answer "
            "every question at length, in at least six full spoken sentences."
        ),
        max_reply_tokens=200,
    ) as running:
        yield running


async def test_barge_in_cancels_generation_synthesis_and_playout(
    talkative_gateway: tuple[str, EarshotApp],
) -> None:
    base, app = talkative_gateway
    events, truth = await ask_then_cut_in(
        base,
        app,
        "Please describe every dish on your menu in detail.",
        spoken("Stop, stop. Thank you."),
        seconds=25.0,
        quiet_ms=800.0,
        # Past a filler (940 ms, when the first answer is late: a cold prompt cache), into
        # the answer itself, which is still being generated for seconds after.
        cut_in_after_ms=1500.0,
    )
    barge = next(e for e in events if isinstance(e, BargeInDetected))
    cut = barge.reply_id
    nothing_of_the_reply_after_its_clear(events, cut)
    completed = [e for e in events if isinstance(e, ReplyCompleted) and e.reply_id == cut]
    assert len(completed) == 1
    # Still generating when the caller cut in (a long answer): the generation was aborted,
    # recorded by the Llm's thread at once (often before the loop records ClearSent).
    assert completed[0].seq > barge.seq and completed[0].finish_reason == "cancelled"
    assert any(
        isinstance(e, StageCancelled)
        and e.stage == "llm"
        and e.reply_id == cut
        and e.seq > barge.seq
        for e in events
    )
    assert len(truth.clears) == 1
    turn = next(t for t in fold_all(events).heard.agent_turns() if t.reply_id == cut)
    assert turn.interrupted and turn.heard_ms < turn.sent_ms + 1


def timeline(events: list[AnyEvent]) -> str:
    """The call's turns, replies, tools and failures, one a line, for a failure's message."""
    kinds = ("Transcript", "Reply", "Tool", "Stage", "Silence", "BargeIn", "Speculat", "Call")
    lines = []
    for event in events:
        name = type(event).__name__
        if any(kind in name for kind in kinds) and name != "ReplyTextGenerated":
            fields = {f: getattr(event, f) for f in event.__struct_fields__[3:]}
            lines.append(f"{event.at_ms:9.0f} {name} {fields}")
    return "\n".join(lines)


async def test_a_table_is_booked_by_voice_and_the_call_ends_with_a_goodbye(
    gateway: tuple[str, EarshotApp],
) -> None:
    """Issue 12's first acceptance, on `make run`'s models: the caller asks for a booking,
    the embedded model calls the bundled booking tool, the booking is in the database and
    the confirmation heard; "thanks, bye" gets the goodbye, heard in full, then the stream
    closes and Twilio is told to hang up."""
    base, app = gateway
    asked = "I'd like to book a table for two tonight at eight, the name is Ada."
    thanks = "Thanks, bye."
    # Told "One moment while I book that", a caller waits out a pause: the model writes the
    # call's arguments meanwhile, 2.5 s here after the other gateway's prompt took the
    # server's cache (test_barge_in_...), 1.1-1.5 s warm; 3 s of patience was not enough
    # once on CI (the timeline in the failure's message says why, next time).
    script = [
        Utterance(spoken(asked), text=asked, after_agent_quiet_ms=800.0),
        Utterance(spoken(thanks), text=thanks, after_agent_quiet_ms=5000.0),
    ]
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=45.0)
    truth = await caller.run()
    events = await stored_call(app, truth.call_sid)
    # Every value said in one turn: the model was told to book (it said the booking back
    # instead in about one call in three when it was left to choose).
    answer = next(e for e in events if isinstance(e, ReplyRequested) and e.caller_turn == 1)
    assert answer.must_call == "book_table"
    called = next((e for e in events if isinstance(e, ToolCalled)), None)
    assert called is not None, timeline(events)
    result = next(e for e in events if isinstance(e, ToolResult))
    arguments = json.loads(called.arguments)
    assert called.name == "book_table" and arguments["party_size"] == 2, called
    assert json.loads(result.result)["booked"] is True, result
    engine = create_engine(app.settings.db_url)
    try:
        async with engine.connect() as conn:
            query = select(bookings_table).where(bookings_table.c.call_sid == truth.call_sid)
            rows = (await conn.execute(query)).mappings().all()
    finally:
        await engine.dispose()
    assert [(r["party_size"], r["name"]) for r in rows] == [(2, arguments["name"])]
    turns = fold_all(events).heard.agent_turns()
    confirmation = next(t for t in turns if t.reason == "caller_turn")
    # The service's own words, heard in full; never the plumbing (a small model sometimes
    # talks of "the book_table function" before it calls it: that is not spoken).
    assert confirmation.heard_text.endswith(json.loads(result.result)["say"])
    # The call was certain from the start: its holding line came first, while the model
    # wrote the arguments (about a second on this CPU).
    assert confirmation.heard_text.startswith(app.settings.agent.tools[0].holding)
    assert not {"book_table", "function", "{", "`"} & set(confirmation.heard_text.split())
    goodbye = next(t for t in turns if t.reason == "goodbye")
    assert goodbye.heard_text == app.settings.agent.goodbye and not goodbye.interrupted
    assert goodbye.proven_end_ms >= goodbye.out_end_ms - 1.0  # its last mark echoed
    assert next(e.reason for e in events if isinstance(e, CallEnded)) == "caller said goodbye"
    assert truth.close_code == 1000 and truth.after_stream is not None
    assert "<Hangup" in truth.after_stream
