"""Which gateway processes are alive, kept in the store they share: leases.

Each ``earshot serve`` registers an instance with a lease it renews (``renew``). A call
is owned by the instance named in its ``CallStarted.gateway``. A call still open (no
``CallEnded``) whose owner holds no lease (it was killed, or the call predates leases)
is lost: ``lost_calls`` finds them, and one live instance, the one that claims the dead
owner (``claim``), ends each with ``CallEnded("gateway lost")``. Its other events are
left as they are, so the call's Heard is what the caller had heard when the line died.

Times are the processes' wall clocks (``time.time()``): hosts behind one load balancer
keep them within a fraction of the lease.
"""

from __future__ import annotations

import socket
import uuid

from sqlalchemy import (
    Column,
    Float,
    Integer,
    String,
    Table,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from events.catalogue import CallEnded, CallStarted
from events.codec import decode
from events.store import EventStore, events_table, metadata

instances_table = Table(
    "gateway_instances",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_unix", Float, nullable=False),
    Column("lease_until_unix", Float, nullable=False),
    Column("recovered_unix", Float, nullable=True),  # its lost calls were ended then
)

LOST = "gateway lost"


def _holding_a_lease(now: float) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The instances alive at ``now``: a lease running, not given up for dead."""
    return (
        instances_table.c.lease_until_unix >= now,
        instances_table.c.recovered_unix.is_(None),
    )


def new_instance_id() -> str:
    return f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:12]}"


class Leases:
    def __init__(self, engine: AsyncEngine, instance_id: str, pid: int) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.pid = pid

    async def renew(self, now: float, lease_s: float) -> bool:
        """Extend this instance's lease to ``now + lease_s`` (registering it the first time).
        True if it had been given up for dead: its lease ran out and another ended its calls."""
        me = instances_table.c.instance_id == self.instance_id
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(instances_table.c.recovered_unix).where(me))).first()
            if row is None:
                await conn.execute(
                    insert(instances_table).values(
                        instance_id=self.instance_id,
                        host=socket.gethostname()[:255],
                        pid=self.pid,
                        started_unix=now,
                        lease_until_unix=now + lease_s,
                    )
                )
            else:
                await conn.execute(
                    update(instances_table)
                    .where(me)
                    .values(lease_until_unix=now + lease_s, recovered_unix=None)
                )
        return row is not None and row.recovered_unix is not None

    async def release(self) -> None:
        """A clean stop: this instance's calls have all ended; its row goes."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(instances_table).where(instances_table.c.instance_id == self.instance_id)
            )

    async def dead(self, now: float) -> list[str]:
        """Instances whose lease ran out and whose calls nobody has ended yet."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(instances_table.c.instance_id).where(
                    instances_table.c.lease_until_unix < now,
                    instances_table.c.recovered_unix.is_(None),
                )
            )
            return [row.instance_id for row in rows]

    async def claim(self, instance_id: str, now: float) -> bool:
        """Take on ending a dead instance's calls; False if another live instance did."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(instances_table)
                .where(
                    instances_table.c.instance_id == instance_id,
                    instances_table.c.lease_until_unix < now,
                    instances_table.c.recovered_unix.is_(None),
                )
                .values(recovered_unix=now)
            )
            return bool(result.rowcount)

    async def lost_calls(self, now: float) -> list[str]:
        """Open calls whose owner holds no lease (dead, claimed, or from before leases)."""
        started, ended = events_table.alias("started"), events_table.alias("ended")
        alive = select(instances_table.c.instance_id).where(*_holding_a_lease(now))
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        started.c.call_sid,
                        started.c.seq,
                        started.c.schema_version,
                        started.c.payload,
                    ).where(
                        started.c.type == "CallStarted",
                        ~exists().where(
                            ended.c.call_sid == started.c.call_sid, ended.c.type == "CallEnded"
                        ),
                    )
                )
            ).all()
            live = {row.instance_id for row in await conn.execute(alive)}
        lost = []
        for call_sid, seq, version, payload in rows:
            event = decode(call_sid, seq, "CallStarted", version, payload)  # its public part
            assert isinstance(event, CallStarted)
            if event.gateway not in live:
                lost.append(call_sid)
        return lost


async def instances_alive(engine: AsyncEngine, now: float) -> int:
    """How many gateway instances hold a lease on this store."""
    async with engine.connect() as conn:
        alive = await conn.execute(
            select(instances_table.c.instance_id).where(*_holding_a_lease(now))
        )
        return len(alive.all())


async def end_lost_call(store: EventStore, call_sid: str) -> None:
    """Record a lost call's end after its last event (at that event's time: nothing was
    recorded after it), unless it has ended meanwhile."""
    async with store.engine.connect() as conn:
        last = (
            await conn.execute(
                select(events_table.c.seq, events_table.c.at_ms, events_table.c.type)
                .where(events_table.c.call_sid == call_sid)
                .order_by(events_table.c.seq.desc())
                .limit(1)
            )
        ).first()
        already = (
            await conn.execute(
                select(events_table.c.seq).where(
                    events_table.c.call_sid == call_sid, events_table.c.type == "CallEnded"
                )
            )
        ).first()
    if last is None or already is not None:
        return
    await store.append(
        call_sid, [CallEnded(call_sid=call_sid, seq=last.seq + 1, at_ms=last.at_ms, reason=LOST)]
    )
