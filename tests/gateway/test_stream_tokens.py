"""Stream tokens: signed, short-lived, single use, bound to one call."""

from __future__ import annotations

import pytest

from gateway.stream_tokens import StreamTokens, TokenRefused


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_valid_token_admits_once() -> None:
    tokens = StreamTokens(b"secret", ttl_s=30, clock=Clock())
    token = tokens.mint("CA1")
    tokens.redeem(token, "CA1")
    with pytest.raises(TokenRefused, match="replayed"):
        tokens.redeem(token, "CA1")


@pytest.mark.parametrize(
    "mangle, reason",
    [
        (lambda t: None, "missing"),
        (lambda t: "", "missing"),
        (lambda t: "not-a-token", "malformed"),
        (lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], "bad_signature"),
        (lambda t: StreamTokens(b"other", clock=Clock()).mint("CA1"), "bad_signature"),
    ],
)
def test_bad_tokens_are_refused(mangle: object, reason: str) -> None:
    tokens = StreamTokens(b"secret", clock=Clock())
    with pytest.raises(TokenRefused) as refused:
        tokens.redeem(mangle(tokens.mint("CA1")), "CA1")  # type: ignore[operator]
    assert refused.value.reason == reason


def test_expired_and_wrong_call() -> None:
    clock = Clock()
    tokens = StreamTokens(b"secret", ttl_s=30, clock=clock)
    token = tokens.mint("CA1")
    with pytest.raises(TokenRefused, match="wrong_call"):
        tokens.redeem(token, "CA2")
    clock.now += 31
    with pytest.raises(TokenRefused, match="expired"):
        tokens.redeem(token, "CA1")
