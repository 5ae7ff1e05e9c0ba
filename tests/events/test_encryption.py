"""Callers' data at rest: encrypted per call, readable with the master key, forgettable.

On a real SQLite file and a real PostgreSQL: the bytes on disk hold no word the caller
or the agent said and no phone number; the events read back equal to what was written;
forgetting a call keeps its events and timings and loses its words for good.
"""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from events.catalogue import AudioRetained, CallStarted, Event, SpeechSynthesized
from events.codec import EventDecodeError
from events.encryption import FORGOTTEN, MasterKey, MasterKeyError, parse_master_key
from events.store import EventStore, Forgetting, call_keys_table, events_table
from projections.heard import fold_all
from tests.projections.test_heard import interrupted_call
from tests.support.gateway import sqlite_file_bytes

MASTER = MasterKey(b"m" * 32)
NUMBER = "+15005550006"
VOICE = bytes(range(256)) * 4  # retained audio, a pattern that cannot occur by chance
# Every private text of the call, none of which may reach the disk in plaintext.
SECRETS = [b"Hello, thanks", b"calling Earshot", b"move my appointment", NUMBER.encode(), VOICE]


def the_call(call_sid: str = "CA1") -> list[Event]:
    events = interrupted_call().events
    started = events[0]
    assert isinstance(started, CallStarted)
    events[0] = CallStarted(
        call_sid=started.call_sid,
        seq=1,
        at_ms=0.0,
        stream_sid="MZ1",
        wall_time_unix=1.0,
        from_number=NUMBER,
        to_number="+15005550001",
    )
    events.append(
        AudioRetained(
            call_sid="CA1",
            seq=len(events) + 1,
            at_ms=99.0,
            track="caller",
            start_ms=0.0,
            mulaw=VOICE,
        )
    )
    return [msgspec.structs.replace(e, call_sid=call_sid) for e in events]


async def on_disk(engine: AsyncEngine, db_url: str) -> bytes:
    """Every payload and wrapped key as stored, and for SQLite the database files too."""
    async with engine.connect() as conn:
        payloads = (await conn.execute(select(events_table.c.payload))).scalars().all()
        keys = (await conn.execute(select(call_keys_table.c.wrapped_key))).scalars().all()
    raw = b"".join(payloads) + b"".join(key for key in keys if key is not None)
    return raw + sqlite_file_bytes(db_url) if db_url.startswith("sqlite") else raw


async def test_nothing_private_reaches_the_disk_and_all_reads_back(
    engine: AsyncEngine, db_url: str
) -> None:
    store = EventStore(engine, MASTER)
    await store.append("CA1", the_call())
    stored = await on_disk(engine, db_url)
    assert not [s[:20] for s in SECRETS if s in stored]
    assert await store.read_call("CA1") == the_call()
    assert [s.event for s in await store.read_after(0)] == the_call()
    (summary,) = await store.calls()
    assert isinstance(summary.started, CallStarted) and summary.started.from_number == NUMBER
    # Planted: the same call stored without a master key is there in plaintext.
    plain = EventStore(engine)
    await plain.append("CA2", the_call("CA2"))
    stored = await on_disk(engine, db_url)
    assert all(s in stored for s in SECRETS)


async def test_forgetting_keeps_the_events_and_their_timing_and_loses_the_words(
    engine: AsyncEngine, db_url: str
) -> None:
    store = EventStore(engine, MASTER)
    await store.append("CA1", the_call())
    before = fold_all(await store.read_call("CA1")).agent_turns()[0]
    assert before.heard_text == "Hello, thanks"
    async with engine.connect() as conn:
        wrapped = (await conn.execute(select(call_keys_table.c.wrapped_key))).scalar_one()
    assert wrapped in await on_disk(engine, db_url)
    assert await store.forget("CA1") is Forgetting.KEY_DESTROYED
    assert wrapped not in await on_disk(engine, db_url)  # nor in the file's free space
    after = await store.read_call("CA1")
    assert [type(e) for e in after] == [type(e) for e in the_call()]
    assert [e.at_ms for e in after] == [e.at_ms for e in the_call()]
    started, synthesized, retained = after[0], after[4], after[-1]
    assert isinstance(started, CallStarted) and started.from_number == FORGOTTEN
    assert isinstance(synthesized, SpeechSynthesized)
    assert (synthesized.text, synthesized.words, synthesized.audio_ms) == (FORGOTTEN, (), 2200.0)
    assert isinstance(retained, AudioRetained) and retained.mulaw == b""
    turn = fold_all(after).agent_turns()[0]
    assert (turn.heard_ms, turn.interrupted, turn.heard_text) == (900.0, True, "")
    assert await store.forgotten_at("CA1") is not None
    assert await store.forget("CA1") is Forgetting.ALREADY
    assert await store.forget("CA404") is Forgetting.UNKNOWN
    # A store that never had the key, and one with the key, read the same: forgotten.
    assert await EventStore(engine, MasterKey(b"x" * 32)).read_call("CA1") == after


async def test_a_call_forgotten_while_it_goes_on_stores_no_more_words(
    engine: AsyncEngine, db_url: str
) -> None:
    store = EventStore(engine, MASTER)
    events = the_call()
    await store.append("CA1", events[:3])
    assert await store.forget("CA1") is Forgetting.KEY_DESTROYED
    for event in events[3:]:
        await store.append("CA1", [event])
    assert not [s[:20] for s in SECRETS if s in await on_disk(engine, db_url)]
    assert len(await store.read_call("CA1")) == len(events)


async def test_a_plaintext_call_is_scrubbed_when_forgotten(
    engine: AsyncEngine, db_url: str
) -> None:
    store = EventStore(engine)
    await store.append("CA1", the_call())
    assert await store.forget("CA1") is Forgetting.SCRUBBED
    assert not [s[:20] for s in SECRETS if s in await on_disk(engine, db_url)]
    started = (await store.read_call("CA1"))[0]
    assert isinstance(started, CallStarted) and started.from_number == FORGOTTEN
    assert await store.forget("CA1") is Forgetting.ALREADY


async def test_a_retried_encrypted_append_is_a_repeat_not_a_conflict(engine: AsyncEngine) -> None:
    store = EventStore(engine, MASTER)
    first = await store.append("CA1", the_call())
    again = await EventStore(engine, MASTER).append("CA1", the_call())
    assert again.duplicate and again.positions == first.positions


async def test_without_the_right_master_key_reading_is_refused(engine: AsyncEngine) -> None:
    await EventStore(engine, MASTER).append("CA1", the_call())
    with pytest.raises(MasterKeyError, match="did not wrap"):
        await EventStore(engine, MasterKey(b"x" * 32)).read_call("CA1")
    with pytest.raises(MasterKeyError, match="set EARSHOT_DATA_KEY"):
        await EventStore(engine).calls()


async def test_a_ciphertext_moved_to_another_row_fails_its_authentication(
    engine: AsyncEngine,
) -> None:
    store = EventStore(engine, MASTER)
    await store.append("CA1", the_call())
    async with engine.begin() as conn:
        moved = (
            await conn.execute(select(events_table.c.payload).where(events_table.c.seq == 3))
        ).scalar_one()
        await conn.execute(
            update(events_table).where(events_table.c.seq == 4).values(payload=moved)
        )
    with pytest.raises(EventDecodeError, match="#4: ReplyTextGenerated fails its authentication"):
        await store.read_call("CA1")


async def test_purge_forgets_the_calls_older_than_its_age(engine: AsyncEngine) -> None:
    store = EventStore(engine, MASTER)
    await store.append("CA1", the_call())
    assert await store.calls_started_before(0.0) == []
    assert await store.calls_started_before(float("inf")) == ["CA1"]
    await store.forget("CA1")
    assert await store.calls_started_before(float("inf")) == []


def test_a_master_key_is_32_bytes_of_base64() -> None:
    with pytest.raises(MasterKeyError, match="32 bytes, not 5"):
        parse_master_key("aGVsbG8")
    with pytest.raises(MasterKeyError, match="not base64"):
        parse_master_key("***")
    assert parse_master_key("bW" * 21 + "0") == parse_master_key("bW" * 21 + "0=")
