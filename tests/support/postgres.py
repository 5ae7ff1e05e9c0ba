"""A throwaway PostgreSQL server for the tests: initdb into a temp dir, start, stop.

Uses Debian's ``postgresql`` package (``make test`` installs it). When the tests
run as root, the server runs as the ``postgres`` user, as PostgreSQL requires.
``EARSHOT_TEST_PG_URL`` points the tests at an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def _bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def available() -> bool:
    return bool(os.environ.get("EARSHOT_TEST_PG_URL")) or _bindir() is not None


def require(*, own_server: bool = False) -> None:
    """Skip the test without PostgreSQL (a test that stops and starts a server needs one of
    its own, not ``EARSHOT_TEST_PG_URL``'s); fail instead when ``EARSHOT_REQUIRE_PG`` is set."""
    installed = _bindir() is not None if own_server else available()
    if installed:
        return
    if os.environ.get("EARSHOT_REQUIRE_PG"):
        pytest.fail("EARSHOT_REQUIRE_PG is set but PostgreSQL is not installed")
    pytest.skip("PostgreSQL is not installed")


class PostgresServer:
    """A server in a temp dir that a test may stop and start again (a database outage)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="earshot-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = _free_port()
        self.url = f"postgresql+asyncpg://earshot@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            _as_server_user(
                [str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "earshot"]
                + ["--no-sync"]
            ),
            check=True,
            capture_output=True,
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(_as_server_user(argv), check=check, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-o", options, "-w", "-l", str(self.root / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are closed and the server goes down, as in a restart."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def own_postgres_server() -> Iterator[PostgresServer]:
    """A fresh server of this test's own, running (never ``EARSHOT_TEST_PG_URL``'s)."""
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a ``postgresql+asyncpg://`` URL to a fresh, empty server."""
    existing = os.environ.get("EARSHOT_TEST_PG_URL")
    if existing:
        yield existing
        return
    with own_postgres_server() as server:
        yield server.url


async def empty(engine: AsyncEngine) -> None:
    """Every table of the store emptied (tests share one PostgreSQL)."""
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE events, call_keys, gateway_instances"))
