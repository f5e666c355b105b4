"""services/audit.py on a real SQLite file: what a diff says about secrets, that a row which cannot be
written fails its change (never silently), and that audit rows go with the log retention."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from app.models import AuditLog, ChannelCreate, ChannelUpdate, utcnow
from services import audit, channels, ip_block
from services.audit import Actor, Secret
from services.auth import ensure_admin
from services.errors import AuditUnavailable, AuthenticationFailed
from services.login import sign_in_admin
from services.retention import RetentionJob, purge_old_audit
from services.security import KeyCipher
from services.settings import SystemSettings, read_settings, update_settings
from services.throttle import Throttle
from tests.helpers import migrated_engine, wait_until

ACTOR = Actor(admin="admin", ip_address="192.0.2.1")
DEFAULTS = SystemSettings(guest_rpm=10, user_rpm=20, log_retention_days=30)
CIPHER = KeyCipher("test-encryption-key")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(tmp_path / "audit.db")
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[AuditLog]:
    with Session(engine) as session:
        return list(session.exec(select(AuditLog).order_by(AuditLog.id)).all())  # type: ignore[arg-type]


def _refuse_audit_rows(engine: Engine) -> None:
    """From now on the database refuses every audit row (as a full disk or a broken table would)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_logs "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
        )


def test_diff_names_plain_fields_old_and_new_and_secrets_only_by_a_word() -> None:
    before = {"name": "a", "rpm": 1, "same": [1], "api_key": Secret.of("sk-old"), "proxy": Secret.of("p")}
    after = {"name": "b", "rpm": 1, "same": [1], "api_key": Secret.of("sk-new"), "headers.X": Secret.of("v")}
    assert audit.diff(before, after) == {
        "name": {"old": "a", "new": "b"},
        "api_key": "changed",
        "proxy": "removed",
        "headers.X": "set",
    }
    assert audit.diff(before, dict(before)) == {}
    assert audit.diff({"api_key": Secret.of("same")}, {"api_key": Secret.of("same")}) == {}
    assert "sk-old" not in repr(Secret.of("sk-old")) and "sk-old" not in str(Secret.of("sk-old"))


def test_a_secret_handed_to_entry_is_stored_as_changed() -> None:
    row = audit.entry(ACTOR, "user.update", changes={"password": Secret.of("hunter22")})
    assert json.loads(row.changes) == {"password": "changed"}


def test_a_channel_change_and_its_row_are_one_transaction(engine: Engine) -> None:
    data = ChannelCreate(name="Main", base_url="http://127.0.0.1:9/v1", api_key="sk-main-key-1", model_id="m")
    with Session(engine) as session:
        channel = channels.create_channel(session=session, data=data, cipher=CIPHER, actor=ACTOR)
    assert channel.id is not None
    assert [row.action for row in _rows(engine)] == ["channel.create"]

    _refuse_audit_rows(engine)
    with Session(engine) as session, pytest.raises(Exception, match="audit refused"):
        channels.update_channel(
            session=session,
            channel_id=channel.id,
            data=ChannelUpdate(name="Renamed"),
            cipher=CIPHER,
            actor=ACTOR,
        )
    with Session(engine) as session:
        assert channels.get_channel(session=session, channel_id=channel.id).name == "Main", "rolled back"
    with Session(engine) as session, pytest.raises(Exception, match="audit refused"):
        channels.delete_channel(session=session, channel_id=channel.id, cipher=CIPHER, actor=ACTOR)
    with Session(engine) as session:
        assert channels.get_channel(session=session, channel_id=channel.id) is not None, "not deleted"
    with Session(engine) as session, pytest.raises(Exception, match="audit refused"):
        update_settings(session=session, changes={"guest_rpm": 99}, defaults=DEFAULTS, actor=ACTOR)
    with Session(engine) as session:
        assert read_settings(session=session, defaults=DEFAULTS).guest_rpm != 99
    with Session(engine) as session, pytest.raises(Exception, match="audit refused"):
        ip_block.add_rule(session=session, ip_address="192.0.2.0/24", reason=None, actor=ACTOR)
    with Session(engine) as session:
        assert ip_block.list_rules(session=session) == []


def test_a_row_written_on_its_own_is_never_lost_silently(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    audit.record(engine, ACTOR, "admin.login")
    assert [row.action for row in _rows(engine)] == ["admin.login"]
    _refuse_audit_rows(engine)
    with caplog.at_level(logging.ERROR, logger="pyaichat.audit"), pytest.raises(AuditUnavailable):
        audit.record(engine, ACTOR, "admin.login", target="x")
    assert "could not write the audit row admin.login" in caplog.text


async def test_sign_ins_are_refused_when_their_row_cannot_be_written(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with Session(engine) as session:
        ensure_admin(session=session, username="admin", password="admin-password-1")
    throttle = Throttle()

    async def sign_in(password: str) -> object:
        return await sign_in_admin(
            engine=engine,
            throttle=throttle,
            username="admin",
            password=password,
            ip="192.0.2.9",
            secret="s" * 32,
        )

    await sign_in("admin-password-1")
    with pytest.raises(AuthenticationFailed):
        await sign_in("wrong-password-1")
    assert [(r.action, r.admin, r.ip_address) for r in _rows(engine)] == [
        ("admin.login", "admin", "192.0.2.9"),
        ("admin.login_failed", "admin", "192.0.2.9"),
    ]
    _refuse_audit_rows(engine)
    with caplog.at_level(logging.ERROR, logger="pyaichat.audit"):
        with pytest.raises(AuditUnavailable):
            await sign_in("admin-password-1")
        with pytest.raises(AuthenticationFailed):  # still the failed sign-in's answer
            await sign_in("wrong-password-2")
    assert caplog.text.count("could not write the audit row") == 2


def _add_rows(engine: Engine, *days_ago: int) -> None:
    with Session(engine) as session:
        for days in days_ago:
            row = audit.entry(ACTOR, "settings.update", target=f"{days} days ago")
            row.created_at = utcnow() - timedelta(days=days, minutes=1)
            session.add(row)
        session.commit()


def test_audit_rows_are_purged_with_the_log_retention(engine: Engine) -> None:
    _add_rows(engine, 0, 1, 29, 31, 400)
    assert purge_old_audit(engine, retention_days=30) == 2
    assert sorted(row.target or "" for row in _rows(engine)) == ["0 days ago", "1 days ago", "29 days ago"]

    _add_rows(engine, 10)
    job = RetentionJob(engine, lambda: 5)  # the daily job reads the current retention: now 5 days
    job.start()
    try:
        wait_until(lambda: len(_rows(engine)) == 2, what="the retention job purging audit rows")
    finally:
        job.stop()
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(AuditLog)).one() == 2


def test_filters_on_postgresql() -> None:
    """The group filter is a LIKE with an escaped ``_`` (``ip_rule`` must not match ``ipXrule``): the same
    answers on PostgreSQL as on SQLite (where the API tests run)."""
    from zoneinfo import ZoneInfo

    from app.db import make_engine
    from app.migrate import upgrade
    from services import audit_queries
    from tests.postgres_server import run_postgres

    with run_postgres() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            for action in ("ip_rule.create", "ip_rule.delete", "ipXrule.create", "channel.update"):
                audit.record(engine, ACTOR, action, changes={"reason": {"old": None, "new": "x"}})
            utc = ZoneInfo("UTC")

            def actions(**given: str | None) -> list[str]:
                values = {"start": None, "end": None, "admin": None, "action": None, **given}
                flt = audit_queries.parse_filter(zone=utc, **values)
                with Session(engine) as session:
                    page = audit_queries.list_entries(session=session, flt=flt, page=1, page_size=10)
                return [item["action"] for item in page.items]

            assert actions(action="ip_rule") == ["ip_rule.delete", "ip_rule.create"]
            assert actions(action="channel.update") == ["channel.update"]
            assert actions(admin="nobody") == []
            assert len(actions(start="2000-01-01", end="2999-01-01")) == 4
        finally:
            engine.dispose()
