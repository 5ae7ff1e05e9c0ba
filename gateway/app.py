"""The gateway's ASGI app: the Twilio webhook, the Media Stream, health and metrics.

Plain ASGI, served by uvicorn with websockets as its WebSocket implementation.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from events.catalogue import CallRefused
from events.recorder import CallRecorder
from gateway import call_page, metrics
from gateway.asgi import read_body, respond
from gateway.config import Settings
from gateway.media_socket import media_stream
from gateway.services import Services
from gateway.webhook import (
    AFTER_STREAM_PATH,
    MAX_WEBHOOK_BODY,
    WebhookRefused,
    after_stream,
    busy,
    connect_stream,
    verified_call,
)

log = logging.getLogger(__name__)

# An HTTP endpoint: (scope, receive, send, the request's headers, lower-cased names).
Handler = Callable[[dict[str, Any], Any, Any, dict[str, str]], Awaitable[None]]


class EarshotApp:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.services = Services.for_settings(self.settings)
        self._routes: dict[str, dict[str, Handler]] = {  # path -> method -> endpoint
            "/healthz": {"GET": self._health},
            "/metrics": {"GET": self._metrics},
            "/calls": {"GET": self._call_list},
            "/calls/": {"GET": self._call_page},  # /calls/CALL_SID
            "/twilio/voice": {"POST": self._voice_webhook},
            AFTER_STREAM_PATH: {"POST": self._after_stream_webhook},
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            if scope["path"] == "/twilio/media":
                await media_stream(scope, receive, send, self.services)
            else:
                await send({"type": "websocket.close", "code": 1008})
        elif kind == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.services.start()
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.services.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith("/tools/") and self.services.booking is not None:
            await self.services.booking(scope, receive, send)
            return
        methods = self._routes.get("/calls/" if path.startswith("/calls/") else path)
        if methods is None:
            await respond(send, 404, b"not found\n", "text/plain")
        elif method not in methods:
            allowed = ", ".join(methods)
            log.warning("%s %s refused: only %s", method, path, allowed)
            body = f"method not allowed: {path} takes {allowed}\n".encode()
            await respond(send, 405, body, "text/plain", {"allow": allowed})
        else:
            await methods[method](scope, receive, send, headers)

    async def _health(self, _scope: Any, _receive: Any, send: Any, _h: dict[str, str]) -> None:
        writer = self.services.writer
        outage_s = writer.outage_s() if writer is not None else 0.0
        store_away = self._store_away()
        draining = self.services.draining
        status = "draining" if draining else "store unavailable" if store_away else "ok"
        health = {
            "status": status,
            "calls_active": self.services.counters.calls_active,
            "calls_admitted": self.services.admission.in_use(time.monotonic()),
            "capacity": self.services.admission.capacity,
            "store_unreachable_s": round(outage_s, 1),
        }
        body = json.dumps(health).encode()
        await respond(send, 503 if status != "ok" else 200, body, "application/json")

    async def _metrics(self, scope: Any, _receive: Any, send: Any, headers: dict[str, str]) -> None:
        if await self._bearer_refused(scope, send, headers):
            return
        text = metrics.render(self.services)
        await respond(send, 200, text.encode(), "text/plain; version=0.0.4")

    async def _call_list(
        self, scope: Any, _receive: Any, send: Any, headers: dict[str, str]
    ) -> None:
        if await self._bearer_refused(scope, send, headers):
            return
        assert self.services.writer is not None
        calls = await self.services.writer.store.calls()
        await respond(send, 200, call_page.render_list(calls).encode(), "text/html; charset=utf-8")

    async def _call_page(
        self, scope: Any, _receive: Any, send: Any, headers: dict[str, str]
    ) -> None:
        """The call page (``gateway.call_page``); ``?at=SEQ`` draws the call as it stood."""
        if await self._bearer_refused(scope, send, headers):
            return
        call_sid = scope["path"].removeprefix("/calls/")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        at_text = query.get("at", [""])[0]
        at = int(at_text) if at_text.isdigit() else None
        assert self.services.writer is not None
        events = await self.services.writer.store.read_call(call_sid, up_to_seq=at)
        if not events:
            await respond(send, 404, f"no call {call_sid}\n".encode(), "text/plain")
            return
        page = await asyncio.to_thread(call_page.render, list(events), call_sid, at)
        await respond(send, 200, page.encode(), "text/html; charset=utf-8")

    async def _bearer_refused(self, scope: Any, send: Any, headers: dict[str, str]) -> bool:
        """Answer 401 (saying why) unless the request carries the operator's bearer token."""
        token = self.settings.metrics_token
        if not token:
            reason = "EARSHOT_METRICS_TOKEN is not set on this gateway, so this page is closed"
        elif not hmac.compare_digest(headers.get("authorization", ""), f"Bearer {token}"):
            reason = "send the header Authorization: Bearer <EARSHOT_METRICS_TOKEN>"
        else:
            return False
        log.warning("%s refused: %s", scope["path"], reason)
        body = f"unauthorized: {reason}\n".encode()
        await respond(send, 401, body, "text/plain", {"www-authenticate": "Bearer"})
        return True

    async def _verified(
        self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[str, str]
    ) -> dict[str, str] | None:
        """A signed webhook's parameters; None once a refusal has been answered and logged."""
        body = await read_body(receive, MAX_WEBHOOK_BODY)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        try:
            if body is None:
                raise WebhookRefused(413, "webhook body too large")
            return verified_call(self.settings, path, body, headers.get("x-twilio-signature"))
        except WebhookRefused as refusal:
            self.services.counters.webhooks_refused += 1
            log.warning("webhook refused (%d): %s", refusal.status, refusal.reason)
            await respond(send, refusal.status, f"{refusal.reason}\n".encode(), "text/plain")
            return None

    async def _after_stream_webhook(
        self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[str, str]
    ) -> None:
        params = await self._verified(scope, receive, send, headers)
        if params is None:
            return
        call_sid = params["CallSid"]
        assert self.services.writer is not None
        try:
            events = await self.services.writer.store.read_call(call_sid)
        except Exception:  # the store is away: hanging up beats leaving the caller waiting
            log.exception("after-stream webhook for %s: store unreadable, hanging up", call_sid)
            events = []
        twiml = after_stream(events)
        log.info("call %s: after its stream: %s", call_sid, twiml)
        await respond(send, 200, twiml.encode(), "application/xml")

    async def _voice_webhook(
        self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[str, str]
    ) -> None:
        params = await self._verified(scope, receive, send, headers)
        if params is None:
            return
        call_sid = params["CallSid"]
        if self.services.draining:  # shutting down: the load balancer sends callers elsewhere
            twiml = busy()
            self._record_refusal(call_sid, params, "draining")
        elif self._store_away():  # a call now could not be recorded: the caller hears busy
            twiml = busy()
            self._record_refusal(call_sid, params, "store unavailable")
        elif not self.services.rate_limit.allow(params.get("From", ""), call_sid, time.monotonic()):
            twiml = busy()
            self._record_refusal(call_sid, params, "rate limited")
        elif self.services.admission.admit(call_sid, time.monotonic()):
            twiml = connect_stream(self.settings, self.services.tokens, params)
        else:
            twiml = busy()
            self._record_refusal(call_sid, params, "busy")
        await respond(send, 200, twiml.encode(), "application/xml")

    def _store_away(self) -> bool:
        """The event store has been unreachable for longer than new calls may wait on it."""
        writer = self.services.writer
        return writer is not None and writer.outage_s() > self.settings.store_outage_bound_s

    def _record_refusal(self, call_sid: str, params: dict[str, str], reason: str) -> None:
        """Count, log and record (once the store takes it) a call turned away at the webhook."""
        services = self.services
        services.counters.calls_refused[reason] += 1
        in_use, capacity = services.admission.in_use(time.monotonic()), services.admission.capacity
        log.warning("call %s refused: %s (%d of %d calls)", call_sid, reason, in_use, capacity)
        assert services.writer is not None
        CallRecorder(call_sid, services.writer).record(
            CallRefused,
            reason=reason,
            in_use=in_use,
            capacity=capacity,
            from_number=params.get("From", "")[:32],
            to_number=params.get("To", "")[:32],
        )
