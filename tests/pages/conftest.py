"""Page tests with NiceGUI's simulated user: each test gets its own database and the loopback upstream."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from nicegui import app
from nicegui.testing import User
from passlib.context import CryptContext
from sqlmodel import Session

from app.models import ChannelCreate
from app.state import AppState
from services import channels, security
from services.settings import update_settings
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import (
    SEE_RETRIES,
    TEST_ADMIN_PASSWORD,
    TEST_ENCRYPTION_KEY,
    TEST_SECRET_KEY,
    wait_until_async,
)
from tests.upstream_server import UpstreamServer


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file at the newest schema, copied for each test: the migrations run once per worker."""
    from app.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "chat.db"
    upgrade(f"sqlite:///{path}")
    return path


# the in-process app's password hashing at bcrypt's lowest cost (see cheap_bcrypt)
CHEAP_BCRYPT = CryptContext(schemes=["bcrypt"], bcrypt__rounds=4)


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process app hashes and checks passwords at bcrypt's lowest cost: these tests are about the
    pages, and every one seeds the admin account and most sign someone in (0.25 s each at the real cost).
    Per test, so the other files a worker runs get the real cost: tests/services/test_security.py tests
    it, and the apps in processes use it."""
    monkeypatch.setattr(security, "password_context", CHEAP_BCRYPT)


@pytest.fixture(autouse=True)
def page_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_template: Path) -> None:
    shutil.copyfile(migrated_template, tmp_path / "chat.db")
    for name, value in {
        "DATABASE_PATH": str(tmp_path / "chat.db"),
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "ADMIN_PASSWORD": TEST_ADMIN_PASSWORD,
        "GUEST_RPM": "1000",
        "USER_RPM": "1000",
        "REGISTER_PER_IP_PER_HOUR": "1000",
        "TRUSTED_PROXIES": "",
        "RATE_LIMIT_STORAGE": "memory://",
        **TEST_TIMEOUTS,
    }.items():
        monkeypatch.setenv(name, value)


def app_state() -> AppState:
    return app.state.pyaichat


async def sign_in_admin(user: User) -> None:
    """Sign in on /admin/login and wait for the login's own navigation to the dashboard to land.

    Opening another page before it lands races it: the simulated user then follows whichever page
    arrives last, and elements found on one page are clicked while the other one is checked."""
    await user.open("/admin/login")
    await user.should_see("管理员登录")
    user.find(marker="username").type("admin")
    user.find(marker="password").type(TEST_ADMIN_PASSWORD)
    user.find(marker="submit").click()
    await wait_until_async(
        lambda: bool(app.storage.user.get("admin_token")) and user.back_history[-1:] == ["/admin/dashboard"],
        what="the admin signed in and on the dashboard",
    )
    await user.should_see("概览", retries=SEE_RETRIES)


@pytest.fixture
def add_model(upstream: UpstreamServer) -> Callable[..., str]:
    """Adds an enabled channel on the running app; returns its model id."""

    def add(
        scenario: str = "ok", model: str | None = None, name: str | None = None, rpm_limit: int = 1000
    ) -> str:
        state = app_state()
        model = model or scenario
        data = ChannelCreate(
            name=name or model.upper(),
            base_url=upstream.base_url(scenario),
            api_key="sk-test-1234567",
            model_id=model,
            rpm_limit=rpm_limit,
        )
        with Session(state.engine) as session:
            channels.create_channel(session=session, data=data, cipher=state.cipher)
        state.directory.refresher.reload()
        return model

    return add


def record_calls(count: int, vary: Callable[[int], dict[str, object]] | None = None) -> None:
    """``count`` answered guest calls in the app's call log, flushed; ``vary(i)`` gives the fields of the
    ``i``-th call that differ from a plain one."""
    from app.models import utcnow
    from services.logs import CallRecord

    writer = app_state().log_writer
    for i in range(count):
        fields: dict[str, object] = {
            "user_id": None,
            "username": None,
            "ip_address": "10.1.1.1",
            "channel_id": None,
            "model_id": "m-a",
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "created_at": utcnow(),
            "status": "ok",
            "tokens_estimated": False,
            "duration_ms": 1,
        }
        writer.record(CallRecord(**{**fields, **(vary(i) if vary else {})}))  # type: ignore[arg-type]
    writer.flush()


def set_limits(**values: int | bool) -> None:
    state = app_state()
    with Session(state.engine) as session:
        update_settings(session=session, changes=values, defaults=state.setting_defaults)
    state.system_settings.refresher.reload()
