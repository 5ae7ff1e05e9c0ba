"""The bundled agent's tool: a small reference booking service, so that a fresh checkout's
receptionist books real tables (issue 12), and an example of what an operator's tool does.

``POST /tools/book_table`` takes the model's arguments as JSON (``party_size``, ``time``,
``name``), checks the request's ``X-Earshot-Signature`` (refused with 401 otherwise,
logged), and keeps the booking in the ``bookings`` table of the gateway's own database
(migration 0004). It answers with a ``say`` line, which Earshot speaks as it is: the
service, not the model, words the confirmation the caller relies on. A booking that
lacks something is answered with what to ask for, never with an error the caller
cannot use. ``earshot serve`` mounts it under ``/tools/``; ``earshot tools serve``
runs it alone (with ``EARSHOT_TOOLS_SECRET`` shared with the gateways).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.core.tool_signature import HEADER, SignatureRefused, verify
from actors.engines.tool_client import CALL_HEADER
from events.store import metadata
from gateway.asgi import read_body, respond

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_PARTY = 20

bookings_table = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False),
    Column("name", String(80), nullable=False),
    Column("party_size", Integer, nullable=False),
    Column("time_text", String(40), nullable=False),
    Column("created_unix", Float, nullable=False),
)


def booking_request(arguments: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The booking's fields, cleaned, and what is missing or unusable (by its name)."""
    missing: list[str] = []
    try:
        party = int(arguments.get("party_size", 0))
    except (TypeError, ValueError):
        party = 0
    if not 1 <= party <= MAX_PARTY:
        missing.append("party_size")
    booking_time = str(arguments.get("time", "")).strip()[:40]
    if not booking_time:
        missing.append("time")
    name = str(arguments.get("name", "")).strip()[:80]
    if not name:
        missing.append("name")
    return {"party_size": party, "time_text": booking_time, "name": name}, missing


def booking_reference(booking_id: int) -> str:
    return f"H-{booking_id:04d}"


ASK_FOR = {"party_size": "how many people", "time": "what time", "name": "the name"}


class BookingService:
    """The ASGI app of the booking tool (mounted by the gateway, or served alone)."""

    def __init__(self, engine: AsyncEngine, secret: bytes) -> None:
        self.engine = engine
        self.secret = secret
        self.refused = 0  # requests turned away (bad signature, body, path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/tools/book_table" or scope["method"] != "POST":
            await _answer(send, 404, {"error": "not found"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await read_body(receive, MAX_BODY)
        try:
            if body is None:
                raise SignatureRefused("body too large")
            verify(self.secret, body, headers.get(HEADER.lower()), time.time())
            arguments = json.loads(body)
            if not isinstance(arguments, dict):
                raise ValueError("not a JSON object")
        except (SignatureRefused, ValueError) as refusal:
            self.refused += 1
            log.warning("booking request refused: %s", refusal)
            status = 401 if isinstance(refusal, SignatureRefused) else 400
            await _answer(send, status, {"error": str(refusal)})
            return
        await _answer(send, 200, await self.book(arguments, headers.get(CALL_HEADER.lower(), "")))

    async def book(self, arguments: dict[str, Any], call_sid: str) -> dict[str, Any]:
        fields, missing = booking_request(arguments)
        if missing:
            wanted = " and ".join(ASK_FOR[name] for name in missing)
            return {"booked": False, "missing": missing, "say": f"To book, I need {wanted}."}
        row = dict(call_sid=call_sid[:64], created_unix=time.time(), **fields)
        async with self.engine.begin() as conn:
            inserted = await conn.execute(
                insert(bookings_table).values(**row).returning(bookings_table.c.id)
            )
            reference = booking_reference(inserted.scalar_one())
        log.info("booked %s for call %s", reference, call_sid)
        people = "one person" if fields["party_size"] == 1 else f"{fields['party_size']} people"
        spoken_reference = " ".join(reference.replace("-", ""))  # "H 0 0 0 1": read out
        return {
            "booked": True,
            "reference": reference,
            "say": (
                f"That's booked: a table for {people} at {fields['time_text']}, under the name "
                f"{fields['name']}. Your reference is {spoken_reference}."
            ),
        }


async def _answer(send: Any, status: int, document: dict[str, Any]) -> None:
    await respond(send, status, json.dumps(document).encode(), "application/json")
