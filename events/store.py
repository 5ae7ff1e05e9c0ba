"""The append-only event store (SQLAlchemy async; SQLite or PostgreSQL, same code).

Appends are checked against each call's stream: a request must continue the
stream exactly (its first ``seq`` is the stream's last + 1), else it is a
``ConcurrencyConflict``, unless it repeats events already stored byte for byte,
which is an idempotent retry and succeeds. Many requests, from many calls,
commit in one transaction (``append_many``); each is accepted or refused on its
own. Global positions are assigned as max + 1 while the writer holds the write
lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``LOCK TABLE``), so they become
visible in commit order with no gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.catalogue import AnyEvent, Event
from events.codec import EventDecodeError, decode, encode, event_type, version_of

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("call_sid", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("at_ms", Float, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    UniqueConstraint("call_sid", "seq", name="uq_events_call_seq"),
)


class ConcurrencyConflict(Exception):
    """An append that does not continue its call's stream (and is not an exact retry)."""

    def __init__(self, call_sid: str, seq: int, reason: str) -> None:
        super().__init__(f"call {call_sid} event #{seq}: {reason}")
        self.call_sid = call_sid
        self.seq = seq


class InvalidAppend(ValueError):
    """An append request that is malformed in itself (empty, mixed calls, seq gaps)."""


@dataclass(frozen=True)
class AppendResult:
    positions: tuple[int, ...]
    duplicate: bool = False


@dataclass(frozen=True)
class StoredEvent:
    position: int
    event: AnyEvent


@dataclass(frozen=True)
class CallSummary:
    call_sid: str
    events: int
    last_at_ms: float
    started: AnyEvent | None
    ended: AnyEvent | None


AppendRequest = tuple[str, Sequence[Event]] | tuple[str, Sequence[Event], Sequence[bytes]]
"""A call's events to append, with their payloads when the caller has encoded them already
(the recorder does, to refuse a bad event where it is made): each is encoded once."""


_COLUMNS = ("position", "call_sid", "seq", "type", "schema_version", "at_ms", "payload")


def _insert_statement(paramstyle: str) -> str:
    """The bulk insert in the driver's own placeholder style.

    Rows go straight to the driver's executemany as tuples: SQLAlchemy's per-row
    parameter processing cost more than the database itself here.
    """
    if paramstyle == "qmark":
        marks = ["?"] * len(_COLUMNS)
    elif paramstyle in ("numeric_dollar", "numeric"):
        prefix = "$" if paramstyle == "numeric_dollar" else ":"
        marks = [f"{prefix}{n}" for n in range(1, len(_COLUMNS) + 1)]
    elif paramstyle == "format":
        marks = ["%s"] * len(_COLUMNS)
    else:
        raise NotImplementedError(f"driver paramstyle {paramstyle!r}")
    return f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join(marks)})"


def _check_request(call_sid: str, events: Sequence[Event]) -> None:
    if len(events) == 1 and events[0].call_sid == call_sid:
        return
    if not events:
        raise InvalidAppend(f"call {call_sid}: nothing to append")
    for offset, event in enumerate(events):
        if event.call_sid != call_sid:
            raise InvalidAppend(f"call {call_sid}: event #{event.seq} belongs to {event.call_sid}")
        if event.seq != events[0].seq + offset:
            raise InvalidAppend(f"call {call_sid}: sequence numbers must be consecutive")


def _encode_all(call_sid: str, events: Sequence[Event]) -> list[bytes]:
    try:
        return [encode(event) for event in events]
    except (TypeError, ValueError) as exc:  # only this request is refused, not its batch
        raise InvalidAppend(f"call {call_sid}: event cannot be encoded: {exc}") from exc


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lock_statement = (
            text("LOCK TABLE events IN EXCLUSIVE MODE")
            if engine.dialect.name == "postgresql"
            else None
        )
        self._insert_sql = _insert_statement(engine.dialect.paramstyle)

    async def append(self, call_sid: str, events: Sequence[Event]) -> AppendResult:
        """Append one request in its own transaction; raises on conflict."""
        (result,) = await self.append_many([(call_sid, events)])
        if isinstance(result, Exception):
            raise result
        return result

    async def append_many(
        self, requests: Sequence[AppendRequest]
    ) -> list[AppendResult | Exception]:
        """Commit many requests in one transaction; returns a result or the refusal for each."""
        async with self.engine.begin() as conn:
            if self._lock_statement is not None:
                await conn.execute(self._lock_statement)
            last_seq = await self._last_seqs(conn, {request[0] for request in requests})
            position = (
                await conn.execute(select(func.coalesce(func.max(events_table.c.position), 0)))
            ).scalar_one()
            pending: dict[tuple[str, int], tuple[int, bytes]] = {}
            rows: list[tuple[object, ...]] = []
            results: list[AppendResult | Exception] = []
            for call_sid, events, *encoded in requests:
                try:
                    _check_request(call_sid, events)
                    payloads = list(encoded[0]) if encoded else _encode_all(call_sid, events)
                    expected = last_seq.get(call_sid, 0) + 1
                    first = events[0].seq
                    if first < expected:
                        results.append(
                            await self._retry_or_conflict(conn, call_sid, events, payloads, pending)
                        )
                        continue
                    if first > expected:
                        raise ConcurrencyConflict(
                            call_sid,
                            first,
                            f"stream is at #{expected - 1}; append would leave a gap",
                        )
                except (InvalidAppend, ConcurrencyConflict) as refusal:
                    results.append(refusal)
                    continue
                positions = []
                for event, payload in zip(events, payloads, strict=True):
                    position += 1
                    positions.append(position)
                    pending[(call_sid, event.seq)] = (position, payload)
                    rows.append(
                        (
                            position,
                            call_sid,
                            event.seq,
                            event_type(event),
                            version_of(event),
                            event.at_ms,
                            payload,
                        )
                    )
                last_seq[call_sid] = events[-1].seq
                results.append(AppendResult(tuple(positions)))
            if rows:
                await conn.exec_driver_sql(self._insert_sql, rows)
        return results

    async def _last_seqs(self, conn: AsyncConnection, call_sids: set[str]) -> dict[str, int]:
        result = await conn.execute(
            select(events_table.c.call_sid, func.max(events_table.c.seq))
            .where(events_table.c.call_sid.in_(call_sids))
            .group_by(events_table.c.call_sid)
        )
        return {call_sid: seq for call_sid, seq in result}

    async def _retry_or_conflict(
        self,
        conn: AsyncConnection,
        call_sid: str,
        events: Sequence[Event],
        payloads: list[bytes],
        pending: dict[tuple[str, int], tuple[int, bytes]],
    ) -> AppendResult | ConcurrencyConflict:
        """A request for sequence numbers already taken: an exact repeat is a no-op success."""
        first, last = events[0].seq, events[-1].seq
        stored = dict(pending)
        rows = await conn.execute(
            select(events_table.c.seq, events_table.c.position, events_table.c.payload).where(
                events_table.c.call_sid == call_sid,
                events_table.c.seq.between(first, last),
            )
        )
        for seq, position, payload in rows:
            stored[(call_sid, seq)] = (position, payload)
        positions = []
        for event, payload in zip(events, payloads, strict=True):
            found = stored.get((call_sid, event.seq))
            if found is None:
                return ConcurrencyConflict(
                    call_sid, event.seq, "request overlaps the stream's end and runs past it"
                )
            if found[1] != payload:
                return ConcurrencyConflict(
                    call_sid, event.seq, "sequence number already holds a different event"
                )
            positions.append(found[0])
        return AppendResult(tuple(positions), duplicate=True)

    async def read_call(self, call_sid: str, up_to_seq: int | None = None) -> list[AnyEvent]:
        """A call's events in order; raises ``EventDecodeError`` on any bad or missing row."""
        query = select(
            events_table.c.seq,
            events_table.c.type,
            events_table.c.schema_version,
            events_table.c.payload,
        ).where(events_table.c.call_sid == call_sid)
        if up_to_seq is not None:
            query = query.where(events_table.c.seq <= up_to_seq)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(events_table.c.seq))).all()
        decoded: list[AnyEvent] = []
        for expected, (seq, type_name, version, payload) in enumerate(rows, start=1):
            if seq != expected:
                raise EventDecodeError(
                    call_sid, expected, f"missing from the stream (next is #{seq})"
                )
            decoded.append(decode(call_sid, seq, type_name, version, payload))
        return decoded

    async def read_after(self, position: int, limit: int = 1000) -> list[StoredEvent]:
        """Events of all calls after a global position, in position order."""
        query = (
            select(
                events_table.c.position,
                events_table.c.call_sid,
                events_table.c.seq,
                events_table.c.type,
                events_table.c.schema_version,
                events_table.c.payload,
            )
            .where(events_table.c.position > position)
            .order_by(events_table.c.position)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            StoredEvent(pos, decode(call_sid, seq, type_name, version, payload))
            for pos, call_sid, seq, type_name, version, payload in rows
        ]

    async def last_position(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(select(func.coalesce(func.max(events_table.c.position), 0)))
                ).scalar_one()
            )

    async def calls(self) -> list[CallSummary]:
        """Stored calls, oldest first, with their start and end events."""
        async with self.engine.connect() as conn:
            counts = (
                await conn.execute(
                    select(
                        events_table.c.call_sid,
                        func.count(),
                        func.max(events_table.c.at_ms),
                        func.min(events_table.c.position),
                    )
                    .group_by(events_table.c.call_sid)
                    .order_by(func.min(events_table.c.position))
                )
            ).all()
            bounds = (
                await conn.execute(
                    select(
                        events_table.c.call_sid,
                        events_table.c.seq,
                        events_table.c.type,
                        events_table.c.schema_version,
                        events_table.c.payload,
                    ).where(events_table.c.type.in_(("CallStarted", "CallEnded")))
                )
            ).all()
        started: dict[str, AnyEvent] = {}
        ended: dict[str, AnyEvent] = {}
        for call_sid, seq, type_name, version, payload in bounds:
            event = decode(call_sid, seq, type_name, version, payload)
            (started if type_name == "CallStarted" else ended)[call_sid] = event
        return [
            CallSummary(call_sid, count, last_at, started.get(call_sid), ended.get(call_sid))
            for call_sid, count, last_at, _ in counts
        ]
