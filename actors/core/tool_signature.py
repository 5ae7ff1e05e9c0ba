"""Signatures on the requests Earshot sends to an operator's endpoints (tools, post-call
webhooks), sans I/O, and their check, for the receiving side.

Like Twilio's own ``X-Twilio-Signature``, and Stripe's: HMAC-SHA256 with a shared
secret over the timestamp and the exact body bytes, sent as
``X-Earshot-Signature: t=<unix seconds>,v1=<hex>``. The timestamp is signed so a
captured request cannot be replayed later than ``TOLERANCE_S``; the body is signed
whole so no argument can be changed on the way.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Earshot-Signature"
TOLERANCE_S = 300.0


class SignatureRefused(Exception):
    """Why a request's signature does not hold (say it in the refusal, log it)."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, body: bytes, header: str | None, now: float) -> None:
    """Raises ``SignatureRefused`` unless ``header`` signs ``body`` with ``secret``, recently."""
    if not header:
        raise SignatureRefused(f"missing {HEADER}")
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        raise SignatureRefused(f"malformed {HEADER}") from None
    if abs(now - timestamp) > TOLERANCE_S:
        raise SignatureRefused("signature timestamp too old or in the future")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise SignatureRefused("signature does not match the body")
