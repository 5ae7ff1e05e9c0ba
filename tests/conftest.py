"""Shared fixtures: one event-store suite runs against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from events.database import create_engine, upgrade
from events.store import EventStore
from tests.support import postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    postgres.require()
    with postgres.postgres_server() as url:
        upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A migrated, empty event database of each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/events.db"
        upgrade(url)
        return url
    server_url: str = request.getfixturevalue("postgres_url")
    return server_url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty store of each backend (the shared PostgreSQL emptied first)."""
    engine = create_engine(db_url)
    if engine.dialect.name == "postgresql":
        await postgres.empty(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> EventStore:
    return EventStore(engine)
