"""This process's lease in the shared store, and the ending of calls whose gateway died.

At start, and whenever another instance's lease runs out, the calls that instance left
open get ``CallEnded("gateway lost")``, so ``earshot calls`` never shows a dead call in
progress. Renewal every third of the lease keeps a live process's calls untouched. A
process that finds it was given up for dead (it stalled past its lease, and another
ended its calls) hangs its calls up: their record is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from events.leases import Leases, end_lost_call
from events.store import EventStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        leases: Leases,
        store: EventStore,
        lease_s: float,
        given_up: Callable[[], Awaitable[None]],
    ) -> None:
        self.leases = leases
        self.store = store
        self.lease_s = lease_s
        self._given_up = given_up
        self._task: asyncio.Task[None] | None = None
        self.calls_recovered = 0

    async def start(self) -> None:
        await self.leases.renew(time.time(), self.lease_s)
        await self.end_lost_calls()
        self._task = asyncio.create_task(self._keep(), name="lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await self.leases.release()
        except Exception as exc:  # the store is away: the lease simply runs out
            log.warning("lease not released: %s", exc)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self._renew_and_recover()
            except Exception as exc:  # the store is away: calls go on; try again
                log.warning("lease not renewed: %s", exc)

    async def _renew_and_recover(self) -> None:
        now = time.time()
        if await self.leases.renew(now, self.lease_s):  # given up for dead meanwhile
            log.error(
                "this gateway's lease ran out (stalled?) and its calls were ended by another: "
                "hanging them up"
            )
            await self._given_up()
        claimed = [
            dead for dead in await self.leases.dead(now) if await self.leases.claim(dead, now)
        ]
        if claimed:
            log.warning("gateway instances %s lost their lease", ", ".join(claimed))
            await self.end_lost_calls()

    async def end_lost_calls(self) -> None:
        for call_sid in await self.leases.lost_calls(time.time()):
            await end_lost_call(self.store, call_sid)
            self.calls_recovered += 1
            log.warning("call %s: its gateway was lost; its end is recorded", call_sid)
