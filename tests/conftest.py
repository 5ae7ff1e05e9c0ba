"""Shared fixtures: one event-store suite runs against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

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
async def store(db_url: str) -> AsyncIterator[EventStore]:
    engine = create_engine(db_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE events, call_keys, gateway_instances"))
    yield EventStore(engine)
    await engine.dispose()
