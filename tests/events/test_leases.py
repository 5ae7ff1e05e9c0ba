"""Leases in the shared store, on a real SQLite file and a real PostgreSQL: a dead gateway's
open calls are found and ended once; a live gateway's calls are never touched."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from events.catalogue import CallEnded, CallStarted, SpeechStarted
from events.leases import LOST, Leases, end_lost_call, instances_alive
from events.store import EventStore

LEASE_S = 10.0


async def open_call(store: EventStore, call_sid: str, gateway: str) -> None:
    await store.append(
        call_sid,
        [
            CallStarted(
                call_sid=call_sid,
                seq=1,
                at_ms=0.0,
                stream_sid="MZ",
                wall_time_unix=0.0,
                gateway=gateway,
            ),
            SpeechStarted(call_sid=call_sid, seq=2, at_ms=1234.5, inbound_ms=1200.0),
        ],
    )


async def test_a_dead_gateways_calls_are_ended_once_and_a_live_ones_never(
    engine: AsyncEngine,
) -> None:
    store = EventStore(engine)
    alive, dying = Leases(engine, "alive", 1), Leases(engine, "dying", 2)
    assert not await alive.renew(0.0, LEASE_S)
    assert await instances_alive(engine, 0.0) == 1
    assert not await dying.renew(0.0, LEASE_S)
    assert await instances_alive(engine, 5.0) == 2
    await open_call(store, "CAlive", "alive")
    await open_call(store, "CAdying", "dying")
    await open_call(store, "CAover", "dying")
    await store.append("CAover", [CallEnded(call_sid="CAover", seq=3, at_ms=9.0, reason="hangup")])
    await alive.renew(8.0, LEASE_S)  # "dying" renews no more: its lease runs out at 10 s
    assert await alive.dead(9.9) == []
    assert await alive.lost_calls(9.9) == []  # a lease still running: nothing is touched
    assert await alive.dead(12.0) == ["dying"]
    assert await alive.claim("dying", 12.0)
    assert not await alive.claim("dying", 12.0)  # another live gateway finds it taken
    assert await alive.lost_calls(12.0) == ["CAdying"]
    await end_lost_call(store, "CAdying")
    await end_lost_call(store, "CAdying")  # twice (two gateways at once): ended once
    events = await store.read_call("CAdying")
    assert [type(e) for e in events] == [CallStarted, SpeechStarted, CallEnded]
    assert (events[-1].at_ms, getattr(events[-1], "reason", None)) == (1234.5, LOST)
    assert await alive.lost_calls(12.0) == []
    assert [type(e) for e in await store.read_call("CAlive")] == [CallStarted, SpeechStarted]
    # The dead one comes back (it had stalled): it learns that its calls were ended.
    assert await dying.renew(13.0, LEASE_S)  # given up for dead
    assert not await dying.renew(14.0, LEASE_S)


async def test_calls_from_before_leases_or_of_a_released_gateway_are_lost(
    engine: AsyncEngine,
) -> None:
    store = EventStore(engine)
    await open_call(store, "CAold", "")  # recorded before gateways named themselves
    leaving = Leases(engine, "leaving", 3)
    await leaving.renew(0.0, LEASE_S)
    await open_call(store, "CAleft", "leaving")
    await leaving.release()
    assert sorted(await Leases(engine, "next", 4).lost_calls(1.0)) == ["CAleft", "CAold"]
