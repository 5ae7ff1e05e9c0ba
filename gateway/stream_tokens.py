"""Signed, short-lived, single-use tokens that admit one Media Stream for one call.

The webhook mints a token for the call it answered and puts it in the TwiML as
a ``<Parameter>`` (Stream URLs carry no query strings); Twilio hands it back in
``start.customParameters``. ``redeem`` checks the HMAC, the expiry, the call it
was minted for, and that it was not used before. Single use is enforced here in
memory and, durably across processes, by the event store: a call's
``CallStarted`` is its event #1, and a second start conflicts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable


class TokenRefused(Exception):
    """A refused stream. ``reason``: missing, malformed, bad_signature, expired,
    wrong_call or replayed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    def __init__(
        self, secret: bytes, ttl_s: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._ttl = ttl_s
        self._clock = clock
        self._redeemed: dict[str, float] = {}  # nonce -> expiry

    def _sign(self, body: bytes) -> str:
        return _b64(hmac.new(self._secret, body, hashlib.sha256).digest())

    def mint(self, call_sid: str) -> str:
        claims = {"call": call_sid, "exp": self._clock() + self._ttl, "nonce": secrets.token_hex(8)}
        body = json.dumps(claims, separators=(",", ":")).encode()
        return f"{_b64(body)}.{self._sign(body)}"

    def redeem(self, token: str | None, call_sid: str) -> None:
        """Admit the stream, or raise ``TokenRefused`` saying why."""
        if not token:
            raise TokenRefused("missing")
        try:
            body_part, signature = token.split(".")
            body = _unb64(body_part)
        except (ValueError, TypeError):
            raise TokenRefused("malformed") from None
        if not hmac.compare_digest(self._sign(body), signature):
            raise TokenRefused("bad_signature")
        try:
            claims = json.loads(body)
            expires, nonce, minted_for = float(claims["exp"]), str(claims["nonce"]), claims["call"]
        except (ValueError, KeyError, TypeError):
            raise TokenRefused("malformed") from None
        now = self._clock()
        if now > expires:
            raise TokenRefused("expired")
        if minted_for != call_sid:
            raise TokenRefused("wrong_call")
        self._redeemed = {n: exp for n, exp in self._redeemed.items() if exp >= now}
        if nonce in self._redeemed:
            raise TokenRefused("replayed")
        self._redeemed[nonce] = expires
