"""Schema migrations with Alembic: the database is brought to the newest revision of ``app/migrations``.

Start-up calls :func:`upgrade` before anything else touches the database; ``python -m app db …`` offers
the same to operators. Instances starting together on one database take a lock first, so only one of
them migrates: a PostgreSQL advisory lock (session-level: a crashed instance releases it), or for
SQLite an ``flock`` on a file next to the database (SQLite instances share a host). On SQLite each
revision runs in one transaction (``BEGIN`` is emitted explicitly; Python's driver would otherwise
commit DDL statement by statement), so a failed upgrade leaves the previous revision intact.

A database stamped with a revision this code does not know was upgraded by a newer pyaichat; it is
refused with a one-line reason instead of being run by code that does not understand its schema.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Index, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression
from sqlmodel import SQLModel

from app.db import make_engine
from app.models import ONLY_ON

log = logging.getLogger("pyaichat.migrations")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# one fixed key for PostgreSQL's advisory lock: every pyaichat instance on the database competes for it
ADVISORY_LOCK_KEY = zlib.crc32(b"pyaichat schema migrations")
LOCK_POLL_SECONDS = 0.25
LOCK_NOTICE_SECONDS = 10.0


class SchemaVersionError(Exception):
    """The database's schema cannot be used by this code; the message is one line for the operator."""


@dataclass(frozen=True)
class Revision:
    id: str
    title: str
    created: str


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str
    applied: list[str]


def alembic_config(connection: Connection | None = None, *, script_location: Path = MIGRATIONS_DIR) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def scripts(script_location: Path = MIGRATIONS_DIR) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(script_location=script_location))


def declared_for(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for comparing the models with a database of ``dialect``: leaves out
    what the models declare for another database only (an index with ``info={ONLY_ON: <dialect>}``, made
    there alone by ``.ddl_if(dialect=...)``, such as PostgreSQL's index for the longest-first duration
    sort), which that database rightly lacks; and, on PostgreSQL, the :func:`collated_indexes` on both
    sides, which Alembic cannot compare."""
    by_definition = {index.name for index in collated_indexes(dialect)} if dialect == "postgresql" else set()

    def include(item: Any, name: str | None, kind: str, reflected: bool, _compare_to: Any) -> bool:
        if kind == "index" and name in by_definition:
            return False
        info = getattr(item, "info", None)
        only = info.get(ONLY_ON) if isinstance(info, dict) else None
        return reflected or only is None or only == dialect

    return include


def collated_indexes(dialect: str) -> list[Index]:
    """The models' indexes on ``dialect`` with an element in a collation of its own (``actor COLLATE
    "C"``): SQLAlchemy reads such an index back from PostgreSQL without that collation, so Alembic would
    find it changed on every comparison (and autogenerate would drop and make it again). They are compared
    by PostgreSQL's own definition of them instead (``tests/test_migrations.py``)."""
    return [
        index
        for table in SQLModel.metadata.tables.values()
        for index in table.indexes
        if index.info.get(ONLY_ON) in (None, dialect)
        and any(
            isinstance(element, BinaryExpression) and element.operator is operators.collate
            for element in index.expressions
        )
    ]


def head_revision(script_location: Path = MIGRATIONS_DIR) -> str:
    head = scripts(script_location).get_current_head()
    if head is None:  # pragma: no cover - the baseline always exists
        raise SchemaVersionError("no migrations found")
    return head


def history(script_location: Path = MIGRATIONS_DIR) -> list[Revision]:
    """Every revision, oldest first."""
    revisions = list(scripts(script_location).walk_revisions())
    revisions.reverse()
    return [
        Revision(
            id=str(script.revision),
            title=next(iter((script.doc or "").strip().splitlines()), ""),
            created=_created(script.longdoc),
        )
        for script in revisions
    ]


def _created(longdoc: str) -> str:
    for line in longdoc.splitlines():
        if line.startswith("Create Date:"):
            return line.removeprefix("Create Date:").strip()
    return ""


def current_revision(connection: Connection) -> str | None:
    """The revision the database is stamped with (None: empty, or made before pyaichat used Alembic)."""
    return MigrationContext.configure(connection).get_current_revision()


def migration_engine(url: str) -> Engine:
    """An engine for running revisions: no pool, and on SQLite real transactions around DDL, each
    taking the write lock when it begins (``BEGIN IMMEDIATE``): a deferred transaction that read first
    would fail at once, without waiting, if a running instance wrote in between."""
    engine = make_engine(url, pooled=False)
    if engine.dialect.name == "sqlite":

        def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below decides the transactions

        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock at once: see below

        event.listen(engine, "connect", _driver_autocommit)
        event.listen(engine, "begin", _begin)
    return engine


def check_known(revision: str | None, script_location: Path = MIGRATIONS_DIR) -> None:
    """Refuse a database stamped by a newer pyaichat (a revision this code does not have)."""
    if revision is None:
        return
    known = {script.revision for script in scripts(script_location).walk_revisions()}
    if revision not in known:
        raise SchemaVersionError(
            f"the database schema is at revision {revision}, which this version of pyaichat does not know "
            f"(its newest is {head_revision(script_location)}): it was upgraded by a newer pyaichat; "
            "run that version, or restore a backup made before the upgrade"
        )


def read_revision(url: str) -> str | None:
    """The database's revision, without creating anything (a missing SQLite file stays missing)."""
    parsed = make_url(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if on_disk and not Path(str(parsed.database)).expanduser().exists():
        return None
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def upgrade(
    url: str, *, then: Callable[[], None] | None = None, script_location: Path = MIGRATIONS_DIR
) -> UpgradeResult:
    """Bring the database at ``url`` to the newest revision, once, whoever else is starting; ``then``
    runs still holding the lock (start-up's seeding: instances starting together would both insert the
    admin account and the settings)."""
    engine = migration_engine(url)
    try:
        with _locked_connection(engine, url) as connection:
            result = _upgrade_on(connection, script_location)
            if then is not None:
                then()
            return result
    finally:
        engine.dispose()


def _upgrade_on(connection: Connection, script_location: Path) -> UpgradeResult:
    before = current_revision(connection)
    connection.commit()
    check_known(before, script_location)
    head = head_revision(script_location)
    if before == head:
        log.info("database schema is current (revision %s)", head)
        return UpgradeResult(before=before, after=head, applied=[])
    pending = _pending(before, script_location)
    log.info(
        "upgrading the database schema from %s to %s (%s)",
        before or "an unversioned database",
        head,
        ", ".join(pending),
    )
    started = time.monotonic()
    command.upgrade(alembic_config(connection, script_location=script_location), "head")
    connection.commit()
    log.info("database schema upgraded to %s in %.1f s", head, time.monotonic() - started)
    return UpgradeResult(before=before, after=head, applied=pending)


def _pending(before: str | None, script_location: Path) -> list[str]:
    ordered = [revision.id for revision in history(script_location)]
    return ordered[ordered.index(before) + 1 :] if before in ordered else ordered


@contextmanager
def _locked_connection(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection to migrate on, once this instance holds the migration lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, _advisory_lock(connection):
            yield connection
        return
    database = make_url(url).database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        path = Path(database).expanduser()
        with _file_lock(path.with_name(path.name + ".migrate-lock")), engine.connect() as connection:
            yield connection
        return
    with engine.connect() as connection:
        yield connection


@contextmanager
def _advisory_lock(connection: Connection) -> Iterator[None]:
    """PostgreSQL's session-level advisory lock, on the connection that migrates: it lasts across the
    revisions' transactions, and the server releases it if that connection dies."""

    def take() -> bool:
        taken = bool(connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK_KEY})").scalar())
        connection.commit()
        return taken

    _wait_for(take)
    try:
        yield
    finally:
        try:
            connection.rollback()  # a failed revision leaves its transaction aborted
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY})")
            connection.commit()
        except SQLAlchemyError as exc:  # the lock ends with the connection anyway; keep the first error
            log.warning("could not release the migration lock: %s", type(exc).__name__)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:

        def take() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _wait_for(take)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_for(take: Any) -> None:
    """Poll ``take`` until it gets the lock; a migration may take minutes on a large log, so no limit."""
    if take():
        return
    log.info("another instance holds the schema migration lock; waiting for it")
    noticed = time.monotonic()
    while not take():
        if time.monotonic() - noticed > LOCK_NOTICE_SECONDS:
            log.info("still waiting for the other instance's schema migration")
            noticed = time.monotonic()
        time.sleep(LOCK_POLL_SECONDS)


# what opening and migrating the database can raise that is the operator's to fix (no bug of ours):
# the newer schema, the server or file out of reach, a driver not installed, a broken alembic_version
DATABASE_PROBLEMS = (SchemaVersionError, SQLAlchemyError, OSError, ImportError, CommandError)


def explain_database_problem(exc: BaseException, url: str) -> str:
    """One line for the operator: what went wrong, as the driver or the system said it, with the URL's
    password blotted out wherever it appears."""
    if isinstance(exc, SchemaVersionError):
        return f"database error: {exc}"
    cause = getattr(exc, "orig", None) or exc
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
    password = make_url(url).password
    if password:
        first = first.replace(str(password), "***")
    return f"database error: cannot use the database: {first}"


def run_command(action: str, url: str) -> int:
    """``python -m app db upgrade|current|history``: print the outcome, return the exit code (problems
    with the database are raised, for the caller to report as one line)."""
    if action == "upgrade":
        result = upgrade(url)
        if result.applied:
            print(f"upgraded the database schema from {result.before or 'none'} to {result.after}")
        else:
            print(f"the database schema is current ({result.after})")
        return 0
    head = head_revision()
    current: str | None = None
    if action == "current":
        current = read_revision(url)
        check_known(current)
        if current is None:
            print(f"none (an empty database, or one made before migrations); an upgrade brings it to {head}")
        elif current == head:
            print(f"{current} (head)")
        else:
            print(f"{current} (the newest is {head}: run `python -m app db upgrade`, or start pyaichat)")
        return 0
    if action == "history":
        try:  # the list is the code's; which one the database is at is a bonus when it can be read
            current = read_revision(url)
            problem: BaseException | None = None
        except DATABASE_PROBLEMS as exc:
            current, problem = None, exc
        for revision in history():
            marks = [
                mark
                for mark, on in (("current", revision.id == current), ("head", revision.id == head))
                if on
            ]
            suffix = f"  ({', '.join(marks)})" if marks else ""
            print(f"{revision.id}  {revision.created}  {revision.title}{suffix}")
        if problem is not None:
            raise problem
        check_known(current)
        return 0
    raise ValueError(f"unknown db action {action!r}")
