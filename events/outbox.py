"""The post-call outbox: every ended call, delivered at least once, from the event log.

``feed`` reads the log's ``CallEnded`` rows after a stored position and enters each
call that ended in ``postcall_outbox``, once (the call is the key). It reads again
from ``LOOKBACK`` positions before the stored one: on PostgreSQL a
transaction can commit an earlier position after a later one was read, and entering a
call twice is harmless. ``claim_due`` hands a gateway the entries due for an attempt,
each leased to it for ``CLAIM_S`` so that two gateways on one store never send the
same entry at once; ``delivered`` and ``failed`` record the outcome (a failure sets
the next attempt, with backoff). Nothing here touches the network or a call: the
gateway's ``PostCallSender`` drives it, beside the calls, never in their way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, String, Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from events.catalogue import CallEnded
from events.store import EventStore, events_table, metadata

LOOKBACK = 500  # positions read again each time (late commits on PostgreSQL)
CLAIM_S = 60.0  # an entry taken for an attempt is another gateway's again after this
FEED = "postcall"

feeds_table = Table(
    "outbox_feeds",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", Integer, nullable=False),
)

outbox_table = Table(
    "postcall_outbox",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_unix", Float, nullable=False),
    Column("delivered_unix", Float, nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until_unix", Float, nullable=True),
)


@dataclass(frozen=True)
class Due:
    call_sid: str
    attempts: int  # failed so far


def backoff_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    """Wait before the next attempt after ``attempts`` failures: base, 2x, 4x ... capped."""
    return float(min(base_s * 2 ** max(attempts - 1, 0), cap_s))


class PostCallOutbox:
    def __init__(self, store: EventStore, instance_id: str) -> None:
        self.store = store
        self.engine: AsyncEngine = store.engine
        self.instance_id = instance_id

    async def feed(self, now: float) -> int:
        """Enter the calls that ended since the stored position; how many were new.

        Only the log's ``CallEnded`` rows are read, by their type (stored in the clear):
        nothing is decoded or decrypted, so a poll costs one range query."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(feeds_table.c.position).where(feeds_table.c.name == FEED))
            ).first()
        stored = int(row.position) if row is not None else 0
        last = await self.store.last_position()
        async with self.engine.connect() as conn:
            ended = (
                await conn.execute(
                    select(events_table.c.call_sid)
                    .where(
                        events_table.c.type == CallEnded.__name__,
                        events_table.c.position > max(stored - LOOKBACK, 0),
                        events_table.c.position <= last,
                    )
                    .order_by(events_table.c.position)
                )
            ).scalars()
            call_sids = list(ended)
        entered = await self._enter(call_sids, now)  # the read is closed: SQLite may write
        if last > stored:
            async with self.engine.begin() as conn:
                if row is None:
                    await conn.execute(insert(feeds_table).values(name=FEED, position=last))
                else:
                    await conn.execute(
                        update(feeds_table)
                        .where(feeds_table.c.name == FEED, feeds_table.c.position < last)
                        .values(position=last)
                    )
        return entered

    async def _enter(self, call_sids: list[str], now: float) -> int:
        if not call_sids:
            return 0
        async with self.engine.begin() as conn:
            known = set(
                (
                    await conn.execute(
                        select(outbox_table.c.call_sid).where(
                            outbox_table.c.call_sid.in_(call_sids)
                        )
                    )
                ).scalars()
            )
            new = [sid for sid in dict.fromkeys(call_sids) if sid not in known]
            for call_sid in new:
                await conn.execute(
                    insert(outbox_table).values(
                        call_sid=call_sid, attempts=0, next_attempt_unix=now
                    )
                )
        return len(new)

    async def claim_due(self, now: float, limit: int = 10) -> list[Due]:
        """Entries due for an attempt, each now leased to this gateway."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox_table.c.call_sid, outbox_table.c.attempts)
                    .where(
                        outbox_table.c.delivered_unix.is_(None),
                        outbox_table.c.next_attempt_unix <= now,
                        _unclaimed(now),
                    )
                    .order_by(outbox_table.c.next_attempt_unix)
                    .limit(limit)
                )
            ).all()
        claimed = []
        for call_sid, attempts in rows:
            async with self.engine.begin() as conn:
                taken = await conn.execute(
                    update(outbox_table)
                    .where(outbox_table.c.call_sid == call_sid, _unclaimed(now))
                    .values(claimed_by=self.instance_id, claimed_until_unix=now + CLAIM_S)
                )
            if taken.rowcount:
                claimed.append(Due(call_sid, int(attempts)))
        return claimed

    async def delivered(self, call_sid: str, now: float) -> None:
        await self._settle(call_sid, delivered_unix=now, claimed_by=None, claimed_until_unix=None)

    async def failed(self, due: Due, error: str, now: float, base_s: float) -> None:
        attempts = due.attempts + 1
        await self._settle(
            due.call_sid,
            attempts=attempts,
            next_attempt_unix=now + backoff_s(attempts, base_s),
            last_error=error[:200],
            claimed_by=None,
            claimed_until_unix=None,
        )

    async def _settle(self, call_sid: str, **values: object) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox_table)
                .where(
                    outbox_table.c.call_sid == call_sid,
                    outbox_table.c.claimed_by == self.instance_id,
                )
                .values(**values)
            )

    async def pending(self) -> int:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_table.c.call_sid).where(outbox_table.c.delivered_unix.is_(None))
            )
            return len(rows.all())


def _unclaimed(now: float) -> ColumnElement[bool]:
    return or_(outbox_table.c.claimed_until_unix.is_(None), outbox_table.c.claimed_until_unix < now)
