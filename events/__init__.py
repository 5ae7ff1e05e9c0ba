"""Events are the truth: the call event catalogue, its codec, and the event store.

Public surface:
- ``earshot.events.catalogue``: the frozen event structs and the ``AnyEvent`` union.
- ``earshot.events.codec``: msgpack encoding with schema versions; ``EventDecodeError``.
- ``earshot.events.store``: ``EventStore`` (append with optimistic concurrency, reads).
- ``earshot.events.group_commit``: ``GroupCommitWriter``, the one batching writer per process.
- ``earshot.events.database``: engine creation and migrations.
"""
