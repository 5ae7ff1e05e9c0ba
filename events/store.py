"""The append-only event store (SQLAlchemy async; SQLite or PostgreSQL, same code).

Appends are checked against each call's stream: a request must continue the
stream exactly (its first ``seq`` is the stream's last + 1), else it is a
``ConcurrencyConflict``, unless it repeats events already stored byte for byte,
which is an idempotent retry and succeeds. Many requests, from many calls,
commit in one transaction (``append_many``); each is accepted or refused on its
own. Global positions are assigned as max + 1 while the writer holds the write
lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``LOCK TABLE``), so they become
visible in commit order with no gaps.

With a master key, private fields are encrypted under each call's data key
(``events.encryption``); ``forget`` destroys a call's key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

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
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events import encryption
from events.catalogue import AnyEvent, CallStarted, Event
from events.codec import EventDecodeError, decode, encode, event_type, version_of
from events.encryption import MasterKey, MasterKeyError

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

call_keys_table = Table(
    "call_keys",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL: destroyed (forgotten)
    Column("created_unix", Float, nullable=False),
    Column("forgotten_unix", Float, nullable=True),
)

KEY_CACHE_CALLS = 4096  # data keys kept unwrapped in memory: the calls in progress, and more


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


class Forgetting(StrEnum):
    """What ``EventStore.forget`` did."""

    KEY_DESTROYED = "key destroyed"  # an encrypted call: its data key is gone
    SCRUBBED = "scrubbed"  # a call stored in plaintext: its private fields were erased
    ALREADY = "already forgotten"
    UNKNOWN = "no such call"


class EventStore:
    """``master_key``: encrypt private fields at rest; None stores them in plaintext."""

    def __init__(self, engine: AsyncEngine, master_key: MasterKey | None = None) -> None:
        self.engine = engine
        self._master = master_key
        self._key_cache: OrderedDict[str, bytes | None] = OrderedDict()  # the writer's
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
            call_sids = {request[0] for request in requests}
            last_seq = await self._last_seqs(conn, call_sids)
            keys, created = await self._writing_keys(conn, call_sids)
            position = (
                await conn.execute(select(func.coalesce(func.max(events_table.c.position), 0)))
            ).scalar_one()
            pending: dict[tuple[str, int], tuple[int, bytes]] = {}
            rows: list[tuple[object, ...]] = []
            results: list[AppendResult | Exception] = []
            for call_sid, events, *encoded in requests:
                try:
                    _check_request(call_sid, events)
                    payloads = self._payloads(call_sid, events, encoded, keys)
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
        self._remember_keys(created)  # only once committed: a rolled-back key was never stored
        return results

    def _payloads(
        self,
        call_sid: str,
        events: Sequence[Event],
        encoded: list[Sequence[bytes]],
        keys: dict[str, bytes | None],
    ) -> list[bytes]:
        payloads = list(encoded[0]) if encoded else _encode_all(call_sid, events)
        if self._master is None:
            return payloads
        key = keys.get(call_sid)
        for index, event in enumerate(events):
            if type(event).PRIVATE:
                payloads[index] = (
                    encryption.encrypt(event, key)
                    if key is not None
                    else encode(encryption.forgotten(event))  # the call was forgotten live
                )
        return payloads

    async def _writing_keys(
        self, conn: AsyncConnection, call_sids: set[str]
    ) -> tuple[dict[str, bytes | None], dict[str, bytes]]:
        """The data keys of the calls being appended to (None: forgotten), creating the
        missing ones inside the append's transaction; and those it created."""
        if self._master is None:
            return {}, {}
        keys = {sid: self._key_cache[sid] for sid in call_sids if sid in self._key_cache}
        missing = call_sids - keys.keys()
        if not missing:
            return keys, {}
        keys.update(await self._stored_keys(conn, missing))
        created: dict[str, bytes] = {}
        for call_sid in sorted(missing - keys.keys()):
            data_key, wrapped = self._master.new_data_key()
            await conn.execute(
                call_keys_table.insert().values(
                    call_sid=call_sid, wrapped_key=wrapped, created_unix=time.time()
                )
            )
            keys[call_sid] = created[call_sid] = data_key
        self._remember_keys({sid: keys[sid] for sid in missing if sid not in created})
        return keys, created

    def _remember_keys(self, keys: dict[str, bytes] | dict[str, bytes | None]) -> None:
        for call_sid, key in keys.items():
            self._key_cache[call_sid] = key
            self._key_cache.move_to_end(call_sid)
        while len(self._key_cache) > KEY_CACHE_CALLS:
            self._key_cache.popitem(last=False)

    async def _stored_keys(
        self, conn: AsyncConnection, call_sids: Iterable[str]
    ) -> dict[str, bytes | None]:
        """The stored calls' data keys, unwrapped; None for a forgotten call. A call with
        no key row (stored in plaintext) is absent."""
        rows = await conn.execute(
            select(call_keys_table.c.call_sid, call_keys_table.c.wrapped_key).where(
                call_keys_table.c.call_sid.in_(list(call_sids))
            )
        )
        keys: dict[str, bytes | None] = {}
        for call_sid, wrapped in rows:
            if wrapped is None:
                keys[call_sid] = None
            elif self._master is None:
                raise MasterKeyError(
                    f"call {call_sid} is stored encrypted: set EARSHOT_DATA_KEY to read it"
                )
            else:
                keys[call_sid] = self._master.unwrap(wrapped)
        return keys

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
            key = (await self._stored_keys(conn, [call_sid])).get(call_sid)
        decoded: list[AnyEvent] = []
        for expected, (seq, type_name, version, payload) in enumerate(rows, start=1):
            if seq != expected:
                raise EventDecodeError(
                    call_sid, expected, f"missing from the stream (next is #{seq})"
                )
            decoded.append(decode(call_sid, seq, type_name, version, payload, key))
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
            keys = await self._stored_keys(conn, {row.call_sid for row in rows})
        return [
            StoredEvent(pos, decode(call_sid, seq, type_name, version, payload, keys.get(call_sid)))
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
            keys = await self._stored_keys(conn, {row.call_sid for row in bounds})
        started: dict[str, AnyEvent] = {}
        ended: dict[str, AnyEvent] = {}
        for call_sid, seq, type_name, version, payload in bounds:
            event = decode(call_sid, seq, type_name, version, payload, keys.get(call_sid))
            (started if type_name == "CallStarted" else ended)[call_sid] = event
        return [
            CallSummary(call_sid, count, last_at, started.get(call_sid), ended.get(call_sid))
            for call_sid, count, last_at, _ in counts
        ]

    async def forget(self, call_sid: str) -> Forgetting:
        """Make a call's private fields unreadable for good; its events and timings stay.

        An encrypted call loses its data key. A call stored in plaintext has its private
        fields erased in place (the one change the log ever takes: a caller's right to be
        forgotten outranks append-only). Either way the call is marked forgotten."""
        now = time.time()
        async with self.engine.begin() as conn:
            if self._lock_statement is not None:
                await conn.execute(self._lock_statement)
            found = (
                await conn.execute(
                    select(call_keys_table.c.wrapped_key).where(
                        call_keys_table.c.call_sid == call_sid
                    )
                )
            ).first()
            if found is not None and found.wrapped_key is None:
                return Forgetting.ALREADY
            if found is not None:
                await conn.execute(
                    update(call_keys_table)
                    .where(call_keys_table.c.call_sid == call_sid)
                    .values(wrapped_key=None, forgotten_unix=now)
                )
                outcome = Forgetting.KEY_DESTROYED
            else:
                if not await self._scrub(conn, call_sid):
                    return Forgetting.UNKNOWN
                await conn.execute(
                    call_keys_table.insert().values(
                        call_sid=call_sid, wrapped_key=None, created_unix=now, forgotten_unix=now
                    )
                )
                outcome = Forgetting.SCRUBBED
        self._key_cache[call_sid] = None
        await self._erase_old_versions()
        return outcome

    async def _erase_old_versions(self) -> None:
        """Rows a forget replaced also live on as old versions: in SQLite's write-ahead log
        (checkpointed and truncated here; ``secure_delete`` zeroes the freed space), in
        PostgreSQL's dead tuples (the small key table is rewritten; a scrubbed plaintext
        call's old rows go at the next vacuum, and WAL segments until recycled)."""
        async with self.engine.connect() as conn:
            outside_transactions = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "sqlite":
                await outside_transactions.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            elif self.engine.dialect.name == "postgresql":
                await outside_transactions.exec_driver_sql("VACUUM FULL call_keys")
                await outside_transactions.exec_driver_sql("VACUUM events")

    async def _scrub(self, conn: AsyncConnection, call_sid: str) -> bool:
        """Erase the private fields of a plaintext call's rows; False if it has none."""
        rows = (
            await conn.execute(
                select(
                    events_table.c.seq,
                    events_table.c.type,
                    events_table.c.schema_version,
                    events_table.c.payload,
                ).where(events_table.c.call_sid == call_sid)
            )
        ).all()
        for seq, type_name, version, payload in rows:
            event = decode(call_sid, seq, type_name, version, payload)
            if type(event).PRIVATE:
                await conn.execute(
                    update(events_table)
                    .where(events_table.c.call_sid == call_sid, events_table.c.seq == seq)
                    .values(
                        payload=encode(encryption.forgotten(event)),
                        schema_version=version_of(event),
                    )
                )
        return bool(rows)

    async def forgotten_at(self, call_sid: str) -> float | None:
        """When the call was forgotten (unix time), or None."""
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(call_keys_table.c.forgotten_unix).where(
                        call_keys_table.c.call_sid == call_sid
                    )
                )
            ).scalar_one_or_none()

    async def calls_started_before(self, unix_time: float) -> list[str]:
        """Calls not yet forgotten that began before ``unix_time``: by their key's
        creation, or (stored in plaintext) their ``CallStarted`` wall time."""
        async with self.engine.connect() as conn:
            keyed = (
                await conn.execute(
                    select(
                        call_keys_table.c.call_sid,
                        call_keys_table.c.created_unix,
                        call_keys_table.c.forgotten_unix,
                    )
                )
            ).all()
        by_key = {row.call_sid: row for row in keyed}
        old = [
            row.call_sid
            for row in keyed
            if row.forgotten_unix is None and row.created_unix < unix_time
        ]
        for summary in await self.calls():
            started = summary.started
            if (
                summary.call_sid not in by_key
                and isinstance(started, CallStarted)
                and started.wall_time_unix < unix_time
            ):
                old.append(summary.call_sid)
        return old
