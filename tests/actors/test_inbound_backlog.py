"""The Transport's inbound backlog: caller audio beyond the limit is dropped, counted;
control frames never are."""

from __future__ import annotations

from actors.transport import InboundBacklog

MEDIA = '{"event":"media","sequenceNumber":"3","media":{"track":"inbound"}}'
MARK = '{"event":"mark","sequenceNumber":"4","mark":{"name":"w1"}}'


def test_media_past_the_limit_is_dropped_and_counted_until_the_transport_catches_up() -> None:
    backlog = InboundBacklog(limit=3)
    assert [backlog.admit(MEDIA) for _ in range(5)] == [True, True, True, False, False]
    assert backlog.dropped == 2
    assert backlog.admit(MARK)  # a mark echo carries playback truth: never dropped
    backlog.processed += 2  # the Transport worked through two frames: 2 of 4 still queued
    assert backlog.admit(MEDIA)  # room for one more
    assert backlog.admit(MEDIA) is False and backlog.dropped == 3


def test_binary_frames_are_looked_at_the_same_way() -> None:
    backlog = InboundBacklog(limit=0)
    assert backlog.admit(MEDIA.encode()) is False and backlog.admit(MARK.encode())
