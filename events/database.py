"""Opening the event database: URL defaults, SQLite pragmas, schema migrations.

The embedded default is a SQLite file in WAL mode (``var/earshot.db`` beside the
checkout, or ``EARSHOT_DB_URL``). PostgreSQL is the same code with a
``postgresql+asyncpg://`` URL. The schema comes only from the Alembic migrations
in ``migrations/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def var_dir() -> Path:
    """Where the gateway keeps its files (the SQLite store, the assembled model):
    ``EARSHOT_VAR_DIR``, else ``var/`` in the working directory (the checkout, under
    ``make``). Never beside the code: installed, that is site-packages."""
    return Path(os.environ.get("EARSHOT_VAR_DIR", "var"))


def migrations_dir() -> Path:
    """The Alembic scripts, found as the installed ``migrations`` package is."""
    spec = importlib.util.find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def default_url() -> str:
    """``EARSHOT_DB_URL`` or the embedded SQLite file."""
    return os.environ.get("EARSHOT_DB_URL") or f"sqlite+aiosqlite:///{var_dir() / 'earshot.db'}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str | None = None, *, synchronous: str | None = None) -> AsyncEngine:
    """An async engine for ``url``.

    For SQLite: WAL journal; ``synchronous`` from ``EARSHOT_SQLITE_SYNCHRONOUS``,
    default FULL, so an acknowledged append survives a power cut, not just a
    killed process (group commit pays one fsync per batch: ``bench/event_store.py``
    measured FULL as fast as NORMAL). A busy timeout, and ``BEGIN IMMEDIATE`` so
    a writer takes the write lock before it reads the sequence numbers it checks.
    """
    url = url or default_url()
    synchronous = synchronous or os.environ.get("EARSHOT_SQLITE_SYNCHRONOUS", "FULL")
    if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):  # OFF would break the ack
        raise ValueError(
            f"EARSHOT_SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA, not {synchronous!r}"
        )
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    _configure_sqlite(engine, synchronous)
    return engine


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @sa_event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        # What a forgotten call's rows held (a destroyed key, scrubbed words) is overwritten
        # with zeros, not left in the file's free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @sa_event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply pending migrations (blocking; call from a thread when a loop is running).
    Raises ``StoreUnavailable`` for a URL that is not a database or cannot be reached."""
    from alembic import command

    url = url or default_url()
    with _as_unavailable(url):
        make_url(url).get_dialect()
        if is_sqlite(url):
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str | None = None) -> None:
    """``upgrade`` from async code: Alembic's env runs its own event loop, so use a thread."""
    await asyncio.to_thread(upgrade, url)


class StoreUnavailable(Exception):
    """What is wrong with the event store a command was pointed at, in one line."""


def describe(url: str) -> str:
    """The URL as it may be printed (no password)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


@contextlib.contextmanager
def _as_unavailable(url: str) -> Iterator[None]:
    """A URL the drivers cannot use, or a database they cannot reach: one line naming it."""
    try:
        yield
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreUnavailable(f"cannot use {describe(url)}: {_first_line(exc)}") from None
    except (OSError, DBAPIError) as exc:
        raise StoreUnavailable(
            f"cannot reach the event store at {describe(url)}: {_first_line(exc)}"
        ) from None


async def check_readable(url: str) -> None:
    """For commands that only read: the store must exist and have this build's schema.

    Raises ``StoreUnavailable`` with the reason; creates, migrates and writes nothing
    (a mistyped SQLite path must not become an empty store)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"not a database URL: {url!r}") from None
    if is_sqlite(url):
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise StoreUnavailable(
                f"no event store at {path or url!r} (the gateway creates it on start; "
                "check --db or EARSHOT_DB_URL)"
            )
        url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"  # opened read-only
    with _as_unavailable(url):
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                current = await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        raise StoreUnavailable(
            f"the event store at {describe(url)} has schema {current or 'none'}, this build "
            f"reads {head}: run `earshot db upgrade`"
        )
