"""The Alembic migrations: the only source of the database schema (installed as a package, so
an installed gateway finds them; ``events.database.migrations_dir``)."""
