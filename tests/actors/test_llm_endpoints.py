"""Replies go to the least busy LLM endpoint, and a finished or failed one frees its place."""

from __future__ import annotations

import pytest

from actors.engines.llm_endpoints import LlmEndpoints


def test_simultaneous_replies_spread_over_the_endpoints() -> None:
    endpoints = LlmEndpoints(["a", "b"])
    with endpoints.lease() as first, endpoints.lease() as second:
        assert {first, second} == {"a", "b"}
        with endpoints.lease() as third:  # both busy: the first of the least busy
            assert third == "a"
            assert endpoints.in_flight() == {"a": 2, "b": 1}
    assert endpoints.in_flight() == {"a": 0, "b": 0}


def test_a_failed_reply_frees_its_endpoint() -> None:
    endpoints = LlmEndpoints(["a", "b"])
    with pytest.raises(RuntimeError), endpoints.lease():
        raise RuntimeError("the stream was cut")
    assert endpoints.in_flight() == {"a": 0, "b": 0}


def test_one_url_serves_every_reply() -> None:  # vLLM: it batches by itself
    endpoints = LlmEndpoints(["http://gpu:8001/v1"])
    with endpoints.lease() as one, endpoints.lease() as two:
        assert one == two == "http://gpu:8001/v1"
    with pytest.raises(ValueError):
        LlmEndpoints([])


def test_work_that_may_be_skipped_starts_only_while_an_endpoint_has_room() -> None:
    embedded = LlmEndpoints(["a", "b"], requests_at_once=1)
    with embedded.lease():
        assert embedded.has_room()  # "b" is free
        with embedded.lease():
            assert not embedded.has_room()  # a speculative reply would make one wait
    assert embedded.has_room()
    batching = LlmEndpoints(["http://gpu:8001/v1"], requests_at_once=32)
    with batching.lease(), batching.lease():
        assert batching.has_room()
