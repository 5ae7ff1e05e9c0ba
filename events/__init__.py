"""Events are the truth: the call event catalogue, its codec, and the event store.

Public surface:
- ``events.catalogue``: the frozen event structs and the ``AnyEvent`` union.
- ``events.codec``: msgpack encoding with schema versions; ``EventDecodeError``.
- ``events.store``: ``EventStore`` (append with optimistic concurrency, reads).
- ``events.group_commit``: ``GroupCommitWriter``, the one batching writer per process.
- ``events.database``: engine creation and migrations.
"""
