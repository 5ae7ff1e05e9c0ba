"""The post-call webhook: each ended call's summary POSTed to ``EARSHOT_POSTCALL_URL``.

Driven by the store's outbox (``events.outbox``), beside the calls and never in their
way: a receiver that is down, slow or refusing only delays its own deliveries, which
are retried with backoff, across restarts and by whichever gateway gets to them. Each
request is signed like a tool's (``X-Earshot-Signature``) and carries the call as
``X-Earshot-Delivery``: delivery is at least once, so a receiver that must not count a
call twice keeps the ids it has seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from actors.core.tool_signature import HEADER, sign
from events.outbox import Due, PostCallOutbox
from projections.call_summary import call_summary

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Earshot-Delivery"
POLL_S = 1.0
TIMEOUT_S = 10.0


class PostCallSender:
    def __init__(
        self,
        outbox: PostCallOutbox,
        url: str,
        secret: bytes,
        retry_base_s: float,
        poll_s: float = POLL_S,
    ) -> None:
        self.outbox = outbox
        self.url = url
        self.secret = secret
        self.retry_base_s = retry_base_s
        self.poll_s = poll_s
        self.delivered = 0
        self.failures = 0

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the store away, say: the calls go on, this tries again
                log.exception("post-call webhook: this round failed; trying again")
            await asyncio.sleep(self.poll_s)

    async def deliver_due(self) -> None:
        await self.outbox.feed(time.time())
        for due in await self.outbox.claim_due(time.time()):
            await self._deliver(due)

    async def _deliver(self, due: Due) -> None:
        events = await self.outbox.store.read_call(due.call_sid)
        body = json.dumps(call_summary(events)).encode()
        error = await asyncio.to_thread(self._post, due.call_sid, body)
        if error is None:
            self.delivered += 1
            await self.outbox.delivered(due.call_sid, time.time())
            log.info("post-call webhook: %s delivered", due.call_sid)
            return
        self.failures += 1
        await self.outbox.failed(due, error, time.time(), self.retry_base_s)
        log.warning(
            "post-call webhook: %s not delivered (attempt %d): %s",
            due.call_sid,
            due.attempts + 1,
            error,
        )

    def _post(self, call_sid: str, body: bytes) -> str | None:
        """None once the receiver took it (2xx); else why not."""
        request = Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                HEADER: sign(self.secret, body, int(time.time())),
                DELIVERY_HEADER: call_sid,
            },
        )
        try:
            with urlopen(request, timeout=TIMEOUT_S) as response:
                response.read(1024)
            return None
        except HTTPError as failure:
            return f"answered HTTP {failure.code}"
        except (URLError, OSError) as failure:
            return f"unreachable: {getattr(failure, 'reason', failure)}"
