"""The event store, written once and run against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from events import outbox  # noqa: F401  (its tables join the metadata)
from events.catalogue import (
    CallEnded,
    CallStarted,
    Event,
    ReplyRequested,
    ReplyTextGenerated,
    ReplyTruncated,
)
from events.codec import EventDecodeError, encode
from events.database import create_engine
from events.group_commit import GroupCommitWriter, WriterClosed
from events.store import ConcurrencyConflict, EventStore, InvalidAppend, events_table, metadata
from gateway import booking_service  # noqa: F401  (its bookings table joins the metadata)


def started(call_sid: str) -> CallStarted:
    return CallStarted(
        call_sid=call_sid, seq=1, at_ms=0.0, stream_sid=f"MZ{call_sid}", wall_time_unix=1.7e9
    )


def text_events(call_sid: str, first_seq: int, count: int, word: str = "hello") -> list[Event]:
    return [
        ReplyTextGenerated(
            call_sid=call_sid,
            seq=first_seq + i,
            at_ms=float(first_seq + i),
            reply_id=1,
            text=f"{word}{i} ",
        )
        for i in range(count)
    ]


async def test_append_and_read_back_in_order(store: EventStore) -> None:
    await store.append("CA1", [started("CA1")])
    await store.append("CA1", text_events("CA1", 2, 3))
    events = await store.read_call("CA1")
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0] == started("CA1")
    assert await store.read_call("CA1", up_to_seq=2) == events[:2]
    assert await store.read_call("CA-unknown") == []


async def test_conflicting_append_is_refused_with_call_and_seq(store: EventStore) -> None:
    await store.append("CA1", [started("CA1")] + text_events("CA1", 2, 1, "mine"))
    with pytest.raises(ConcurrencyConflict, match=r"call CA1 event #2"):
        await store.append("CA1", text_events("CA1", 2, 1, "theirs"))
    with pytest.raises(ConcurrencyConflict, match="gap"):
        await store.append("CA1", text_events("CA1", 5, 1))
    with pytest.raises(ConcurrencyConflict, match="runs past"):
        await store.append("CA1", text_events("CA1", 2, 3, "mine"))
    assert [e.seq for e in await store.read_call("CA1")] == [1, 2]


async def test_exact_retry_is_idempotent(store: EventStore) -> None:
    first = await store.append("CA1", [started("CA1")] + text_events("CA1", 2, 2))
    again = await store.append("CA1", [started("CA1")] + text_events("CA1", 2, 2))
    assert again.duplicate and again.positions == first.positions
    assert len(await store.read_call("CA1")) == 3
    assert await store.last_position() == 3


async def test_malformed_requests_are_refused(store: EventStore) -> None:
    with pytest.raises(InvalidAppend):
        await store.append("CA1", [])
    with pytest.raises(InvalidAppend, match="belongs to CA2"):
        await store.append("CA1", [started("CA2")])
    with pytest.raises(InvalidAppend, match="consecutive"):
        await store.append("CA1", [started("CA1"), *text_events("CA1", 3, 1)])


async def test_one_refusal_does_not_sink_the_batch(store: EventStore) -> None:
    results = await store.append_many(
        [
            ("CA1", [started("CA1")]),
            ("CA2", text_events("CA2", 7, 1)),  # gap: refused
            ("CA3", [started("CA3")]),
            ("CA1", text_events("CA1", 2, 2)),
            ("CA1", text_events("CA1", 2, 2)),  # retry of the previous request inside the batch
        ]
    )
    assert isinstance(results[1], ConcurrencyConflict)
    assert [getattr(r, "positions", None) for r in results] == [(1,), None, (2,), (3, 4), (3, 4)]
    assert len(await store.read_call("CA1")) == 3


async def test_global_positions_are_gapless_in_commit_order(store: EventStore) -> None:
    for n in range(5):
        await store.append(f"CA{n}", [started(f"CA{n}")])
    with pytest.raises(ConcurrencyConflict):
        await store.append(
            "CA0",
            [
                started("CA0").__class__(
                    call_sid="CA0", seq=1, at_ms=1.0, stream_sid="x", wall_time_unix=0.0
                )
            ],
        )
    await store.append("CA0", text_events("CA0", 2, 2))
    stored = await store.read_after(0)
    assert [s.position for s in stored] == list(range(1, 8))
    assert [s.position for s in await store.read_after(5, limit=1)] == [6]


async def test_two_store_instances_racing_on_one_call(db_url: str, store: EventStore) -> None:
    """Two writers (separate engines, as two processes would have) append the same seq."""
    await store.append("CA1", [started("CA1")])
    other_engine = create_engine(db_url)
    other = EventStore(other_engine)
    try:
        results = await asyncio.gather(
            store.append("CA1", text_events("CA1", 2, 50, "a")),
            other.append("CA1", text_events("CA1", 2, 50, "b")),
            return_exceptions=True,
        )
    finally:
        await other_engine.dispose()
    assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 1
    events = await store.read_call("CA1")
    assert len(events) == 51
    assert len({e.text[0] for e in events[1:] if isinstance(e, ReplyTextGenerated)}) == 1


async def test_group_commit_batches_appends_from_many_threads(store: EventStore) -> None:
    writer = GroupCommitWriter(store, linger_s=0.01)
    await writer.start()
    futures = []

    def caller_thread(n: int) -> None:
        sid = f"CA{n}"
        futures.append(writer.submit(sid, [started(sid)]))
        for seq in range(2, 40):
            futures.append(writer.submit(sid, text_events(sid, seq, 1)))

    threads = [threading.Thread(target=caller_thread, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert writer.events_committed == 8 * 39
    assert writer.batches < len(futures) / 4, "appends were not grouped"
    for n in range(8):
        assert [e.seq for e in await store.read_call(f"CA{n}")] == list(range(1, 40))
    with pytest.raises(WriterClosed):
        writer.submit("CA0", text_events("CA0", 40, 1)).result()


async def test_group_commit_reports_refusals_per_request(store: EventStore) -> None:
    writer = GroupCommitWriter(store)
    await writer.start()
    ok = writer.submit("CA1", [started("CA1")])
    bad = writer.submit("CA1", text_events("CA1", 9, 1))
    end = await writer.append("CA1", [CallEnded(call_sid="CA1", seq=2, at_ms=3.0, reason="hangup")])
    await writer.close()
    assert ok.result().positions == (1,)
    assert isinstance(bad.exception(), ConcurrencyConflict)
    assert end.positions == (2,)


async def test_corrupt_payload_names_call_and_seq(store: EventStore) -> None:
    await store.append("CA1", [started("CA1")] + text_events("CA1", 2, 2))
    async with store.engine.begin() as conn:
        await conn.execute(
            update(events_table)
            .where(events_table.c.call_sid == "CA1", events_table.c.seq == 3)
            .values(payload=b"\xc1not msgpack")
        )
    with pytest.raises(EventDecodeError, match=r"call CA1 event #3: corrupt ReplyTextGenerated"):
        await store.read_call("CA1")


async def insert_raw_row(store: EventStore, type_name: str, payload: bytes) -> None:
    """Write event #2 of CA1 behind the store's back, as corruption or an older build would."""
    await store.append("CA1", [started("CA1")])
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(events_table).values(
                position=2,
                call_sid="CA1",
                seq=2,
                type=type_name,
                schema_version=1,
                at_ms=1.0,
                payload=payload,
            )
        )


async def test_unknown_event_type_names_call_and_seq(store: EventStore) -> None:
    await insert_raw_row(store, "TeleportRequested", b"\x80")
    with pytest.raises(
        EventDecodeError, match=r"call CA1 event #2: unknown event type 'TeleportRequested'"
    ):
        await store.read_call("CA1")
    with pytest.raises(EventDecodeError, match="event #2"):
        await store.read_after(0)


async def test_row_and_payload_disagreeing_is_an_error(store: EventStore) -> None:
    payload = encode(ReplyRequested(call_sid="CA9", seq=5, at_ms=1.0, reply_id=1))
    await insert_raw_row(store, "ReplyRequested", payload)
    with pytest.raises(
        EventDecodeError, match=r"call CA1 event #2: payload belongs to call CA9 event #5"
    ):
        await store.read_call("CA1")


async def test_missing_row_is_reported_not_skipped(store: EventStore) -> None:
    await store.append("CA1", [started("CA1")] + text_events("CA1", 2, 3))
    async with store.engine.begin() as conn:
        await conn.execute(events_table.delete().where(events_table.c.seq == 3))
    with pytest.raises(EventDecodeError, match=r"call CA1 event #3: missing"):
        await store.read_call("CA1")


async def test_calls_lists_start_and_end(store: EventStore) -> None:
    await store.append(
        "CA1", [started("CA1"), CallEnded(call_sid="CA1", seq=2, at_ms=9000.0, reason="hangup")]
    )
    await store.append("CA2", [started("CA2")])
    calls = await store.calls()
    assert [(c.call_sid, c.events) for c in calls] == [("CA1", 2), ("CA2", 1)]
    assert calls[0].ended is not None and calls[1].ended is None


async def test_migrations_match_the_code_schema(store: EventStore) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync_conn: compare_metadata(MigrationContext.configure(sync_conn), metadata)
        )
    assert diff == []


async def test_an_unencodable_event_is_refused_alone(store: EventStore) -> None:
    bad = ReplyTextGenerated(call_sid="CA2", seq=1, at_ms=object(), reply_id=1, text="x")  # type: ignore[arg-type]
    results = await store.append_many(
        [("CA1", [started("CA1")]), ("CA2", [bad]), ("CA3", [started("CA3")])]
    )
    assert isinstance(results[1], InvalidAppend) and "cannot be encoded" in str(results[1])
    assert [len(await store.read_call(sid)) for sid in ("CA1", "CA2", "CA3")] == [1, 0, 1]


class Unreachable:
    """Injected fault: the store's transactions fail as if the database were away, for a while."""

    def __init__(self, store: EventStore, failures: int, error: Exception) -> None:
        self.store, self.failures, self.error = store, failures, error
        self.real = store.append_many

    async def append_many(self, requests: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return await self.real(requests)


async def test_group_commit_retries_while_the_database_is_away_and_loses_nothing(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    away = Unreachable(store, 6, OperationalError("INSERT", {}, ConnectionRefusedError(111)))
    monkeypatch.setattr(store, "append_many", away.append_many)
    writer = GroupCommitWriter(store, linger_s=0.0)
    await writer.start()
    acks = [writer.submit("CA1", [started("CA1")])]
    acks += [writer.submit("CA1", text_events("CA1", seq, 1)) for seq in range(2, 30)]
    while writer.commit_retries < 3:
        await asyncio.sleep(0.01)
    assert writer.outage_s() > 0 and not any(ack.done() for ack in acks)
    acks.append(writer.submit("CA1", text_events("CA1", 30, 1)))  # recorded during the outage
    await writer.flush()
    assert all(ack.exception() is None for ack in acks)
    assert writer.commit_retries == 6 and writer.outage_s() == 0.0
    assert [e.seq for e in await store.read_call("CA1")] == list(range(1, 31))
    await writer.close()


async def test_group_commit_fails_a_broken_transaction_at_once(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Unreachable(store, 1, ValueError("a bug, not an outage"))
    monkeypatch.setattr(store, "append_many", broken.append_many)
    writer = GroupCommitWriter(store)
    await writer.start()
    first = writer.submit("CA1", [started("CA1")])
    with pytest.raises(ValueError, match="a bug"):
        await first.wait()
    assert writer.commit_retries == 0
    await writer.close()


async def test_closing_during_an_outage_gives_up_after_its_bound_and_says_so(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    away = Unreachable(store, 10_000, OperationalError("INSERT", {}, OSError("unreachable")))
    monkeypatch.setattr(store, "append_many", away.append_many)
    writer = GroupCommitWriter(store)
    await writer.start()
    ack = writer.submit("CA1", [started("CA1")])
    await writer.close(flush_for_s=0.3)
    assert isinstance(ack.exception(), WriterClosed)


async def test_rows_of_an_older_build_read_back_upcast_beside_new_ones(store: EventStore) -> None:
    """A v1 ReplyTruncated row (as the build before per-type versions wrote it) and the
    v2 rows written now read back as one call; each row keeps its type's version."""
    old = msgspec.msgpack.encode(
        {
            "type": "ReplyTruncated",
            "call_sid": "CA1",
            "seq": 2,
            "at_ms": 1.0,
            "reply_id": 1,
            "heard_ms": 400.0,
            "heard_lower_ms": 390.0,
            "heard_upper_ms": 410.0,
            "heard_text": "Hello",
            "partial_word": "there",
        }
    )
    await insert_raw_row(store, "ReplyTruncated", old)
    cut = ReplyTruncated(
        call_sid="CA1",
        seq=3,
        at_ms=2.0,
        reply_id=2,
        heard_ms=100.0,
        heard_lower_ms=90.0,
        heard_upper_ms=110.0,
    )
    await store.append("CA1", [cut])
    events = await store.read_call("CA1")
    assert events[1] == msgspec.structs.replace(
        cut,
        seq=2,
        at_ms=1.0,
        reply_id=1,
        heard_ms=400.0,
        heard_lower_ms=390.0,
        heard_upper_ms=410.0,
    )
    assert events[2] == cut
    async with store.engine.connect() as conn:
        versions = (
            await conn.execute(
                select(events_table.c.seq, events_table.c.schema_version).order_by(
                    events_table.c.seq
                )
            )
        ).all()
    assert [tuple(row) for row in versions] == [(1, 1), (2, 1), (3, 2)]
