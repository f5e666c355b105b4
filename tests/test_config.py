"""Configuration of docs/configuration.md: dev secrets generated and kept, production refusing bad secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.config import SECRETS_FILE_NAME, ConfigError, load_settings

ALL_VARS = [
    "PYAICHAT_ENV",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "SECRET_KEY",
    "ENCRYPTION_KEY",
    "DATABASE_PATH",
    "DATABASE_URL",
    "LOG_RETENTION_DAYS",
    "GUEST_RPM",
    "USER_RPM",
    "REGISTER_PER_IP_PER_HOUR",
    "RATE_LIMIT_STORAGE",
    "TRUSTED_PROXIES",
    "CORS_ORIGINS",
    "UI_ORIGINS",
    "APP_HOST",
    "APP_PORT",
    "TZ",
    "USER_TOKEN_HOURS",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> pytest.MonkeyPatch:
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(data_dir / "chat.db"))
    return monkeypatch


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings, _ = load_settings()
    assert (settings.admin_username, settings.guest_rpm, settings.user_rpm, settings.log_retention_days) == (
        "admin",
        10,
        60,
        90,
    )
    assert (settings.app_host, settings.app_port, settings.tz) == ("0.0.0.0", 8000, "UTC")
    assert settings.rate_limit_storage == "memory://"
    assert settings.trusted_proxy_networks == []
    assert settings.cors_origin_list == ["*"]


def test_dev_mode_generates_and_keeps_secrets(env: pytest.MonkeyPatch, data_dir: Path) -> None:
    first, info = load_settings()
    assert not first.is_production
    assert set(info.generated) == {"SECRET_KEY", "ENCRYPTION_KEY", "ADMIN_PASSWORD"}
    assert info.generated_admin_password == first.secret("admin_password")
    secrets_file = data_dir / SECRETS_FILE_NAME
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600

    second, info2 = load_settings()
    assert info2.generated == [] and info2.generated_admin_password is None
    for name in ("secret_key", "encryption_key", "admin_password"):
        assert second.secret(name) == first.secret(name)


def test_production_is_chosen_by_any_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("SECRET_KEY", "a-long-enough-secret-key")
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY is not set"):
        load_settings()


@pytest.mark.parametrize("placeholder", ["change_me", "random_secret_key", "CHANGE_ME", "your_secret_key"])
def test_production_refuses_placeholders(env: pytest.MonkeyPatch, placeholder: str) -> None:
    env.setenv("SECRET_KEY", placeholder)
    env.setenv("ENCRYPTION_KEY", "random_encrypt_key")
    env.setenv("ADMIN_PASSWORD", "a-good-password")
    with pytest.raises(ConfigError, match="placeholder") as error:
        load_settings()
    assert "\n" not in str(error.value)
    assert placeholder not in str(error.value)


def test_production_env_flag_requires_every_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("PYAICHAT_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings()


def test_production_with_good_secrets(env: pytest.MonkeyPatch, data_dir: Path) -> None:
    env.setenv("SECRET_KEY", "s" * 32)
    env.setenv("ENCRYPTION_KEY", "any string at all")
    env.setenv("ADMIN_PASSWORD", "a-good-password")
    settings, info = load_settings()
    assert settings.is_production and info.generated == []
    assert not (data_dir / SECRETS_FILE_NAME).exists()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ADMIN_PASSWORD", "short", "ADMIN_PASSWORD is too short"),
        ("SECRET_KEY", "tiny", "SECRET_KEY is too short"),
    ],
)
def test_production_refuses_weak_secrets(
    env: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    env.setenv("SECRET_KEY", "s" * 32)
    env.setenv("ENCRYPTION_KEY", "e")
    env.setenv("ADMIN_PASSWORD", "a-good-password")
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("APP_PORT", "eighty", "APP_PORT"),
        ("APP_PORT", "70000", "APP_PORT"),
        ("GUEST_RPM", "0", "GUEST_RPM"),
        ("USER_RPM", "-5", "USER_RPM"),
        ("LOG_RETENTION_DAYS", "x", "LOG_RETENTION_DAYS"),
        ("TZ", "Mars/Olympus", "unknown time zone"),
        ("TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES"),
        ("UI_ORIGINS", "chat.example.com", "UI_ORIGINS"),
        ("UI_ORIGINS", "https://chat.example.com/app", "UI_ORIGINS"),
        ("PYAICHAT_ENV", "staging", "PYAICHAT_ENV"),
        ("REGISTER_PER_IP_PER_HOUR", "0", "REGISTER_PER_IP_PER_HOUR"),
        ("ADMIN_USERNAME", "ad\x1bmin", "ADMIN_USERNAME: control characters"),
        ("ADMIN_PASSWORD", "pass\tword-1", "ADMIN_PASSWORD: control characters"),
    ],
)
def test_invalid_values_are_one_line_errors(
    env: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment) as error:
        load_settings()
    assert "\n" not in str(error.value)


def test_lists_and_zone(env: pytest.MonkeyPatch) -> None:
    env.setenv("TRUSTED_PROXIES", "10.0.0.0/8, ::1 ,")
    env.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    env.setenv("UI_ORIGINS", "https://chat.example.com, http://10.0.0.5:8000/")
    env.setenv("TZ", "Asia/Shanghai")
    settings, _ = load_settings()
    assert settings.ui_origin_list == ["https://chat.example.com", "http://10.0.0.5:8000/"]
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.0/8", "::1/128"]
    assert settings.cors_origin_list == ["https://a.example", "https://b.example"]
    assert settings.zone.key == "Asia/Shanghai"


def test_database_url_overrides_path(env: pytest.MonkeyPatch, data_dir: Path) -> None:
    env.chdir(data_dir)  # with DATABASE_URL, dev secrets are kept in ./data: not the repository's
    env.setenv("DATABASE_URL", f"sqlite:///{data_dir}/other.db")
    settings, _ = load_settings()
    assert settings.sqlalchemy_url == f"sqlite:///{data_dir}/other.db"
