"""Alembic's environment: runs the revisions on the connection ``app.migrate`` hands over (start-up and
``python -m app db``), or, for ``alembic`` commands run by a developer (``alembic revision
--autogenerate``), on the database the environment configures (``DATABASE_URL`` / ``DATABASE_PATH``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app import models  # noqa: F401 - registers the tables on SQLModel.metadata
from app.migrate import declared_for

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters a table by copying it; batch mode does that
        transaction_per_migration=True,
        transactional_ddl=True,  # SQLite too: app.migrate's engine wraps the DDL in BEGIN … COMMIT
        compare_type=True,
        include_object=declared_for(connection.dialect.name),  # for autogenerate
    )
    with context.begin_transaction():
        context.run_migrations()


def run_for_developer() -> None:
    from app.config import read_environment
    from app.migrate import migration_engine

    engine = migration_engine(read_environment().sqlalchemy_url)
    try:
        with engine.connect() as connection:
            run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("pyaichat's migrations run against a database; offline (--sql) mode is not supported")
given = config.attributes.get("connection")
if given is not None:
    run(given)
else:
    run_for_developer()
