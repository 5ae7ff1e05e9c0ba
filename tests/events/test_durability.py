"""An acknowledged append survives the writer being killed with SIGKILL mid group commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events.database import create_engine
from events.store import EventStore
from projections.replay import fold_all

REPO = Path(__file__).resolve().parents[2]


async def test_acked_appends_survive_kill_9(db_url: str, store: EventStore) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.events.durability_writer", db_url, "4"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    acked: dict[str, set[int]] = {}
    assert writer.stdout is not None
    deadline = time.monotonic() + 60
    try:
        while sum(map(len, acked.values())) < 3000 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            _, call_sid, seq = line.split()
            acked.setdefault(call_sid, set()).add(int(seq))
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # no flush, no close: the middle of a commit
        writer.wait()
    # Acks already in the pipe when the writer died count too: they were promised.
    for line in writer.stdout.read().splitlines():
        _, call_sid, seq = line.split()
        acked.setdefault(call_sid, set()).add(int(seq))
    assert writer.stderr is not None
    assert sum(map(len, acked.values())) >= 3000, writer.stderr.read()

    for call_sid, seqs in acked.items():
        events = await store.read_call(call_sid)  # raises on any gap or corrupt row
        stored = {event.seq for event in events}
        assert seqs <= stored, f"{call_sid}: acknowledged but lost: {sorted(seqs - stored)[:10]}"
        view = fold_all(events)  # replays consistently
        assert view.last_seq == len(events)
        assert all(turn.heard_ms <= turn.sent_ms for turn in view.heard.agent_turns())


async def pragmas_in_force(url: str) -> tuple[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            synchronous = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await engine.dispose()
    return str(journal), int(synchronous or 0)


async def test_the_sqlite_store_runs_in_wal_with_full_sync_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ack promises (survives a power cut) rests on these pragmas, not on the kill
    test above, which a process-level crash passes even with synchronous=OFF."""
    monkeypatch.delenv("EARSHOT_SQLITE_SYNCHRONOUS", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}"
    assert await pragmas_in_force(url) == ("wal", 2)  # 2: FULL
    monkeypatch.setenv("EARSHOT_SQLITE_SYNCHRONOUS", "EXTRA")
    assert await pragmas_in_force(url) == ("wal", 3)
    monkeypatch.setenv("EARSHOT_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="EARSHOT_SQLITE_SYNCHRONOUS"):
        create_engine(url)
