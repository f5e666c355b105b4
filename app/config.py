"""Configuration: read once at start from the environment (docs/configuration.md).

Dev mode generates missing secrets and keeps them in the data directory, so a restart can still decrypt
the channel keys stored earlier. Production mode (any secret set, or ``PYAICHAT_ENV=production``) refuses
a missing or placeholder secret with a one-line reason.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.text import has_control_characters

PLACEHOLDER_SECRETS = frozenset(
    {
        "change_me",
        "changeme",
        "change-me",
        "random_secret_key",
        "random_encrypt_key",
        "your_secure_password",
        "your_secret_key",
        "your_encryption_key",
        "secret",
        "password",
        "admin",
        "xxx",
    }
)
SECRETS_FILE_NAME = ".pyaichat-secrets.json"
MIB = 1024 * 1024
MIN_SECRET_KEY_LENGTH = 16
MIN_ADMIN_PASSWORD_LENGTH = 8


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line meant for the operator."""


class Settings(BaseSettings):
    """Every variable of docs/configuration.md#variables. Secrets are resolved by :func:`load_settings`."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    pyaichat_env: Literal["development", "production"] = "development"
    admin_username: str = Field(default="admin", min_length=1, max_length=64)
    admin_password: SecretStr | None = None
    secret_key: SecretStr | None = None
    encryption_key: SecretStr | None = None
    database_path: str = "./data/chat.db"
    database_url: str | None = None
    log_retention_days: int = Field(default=90, ge=1, le=36500)
    guest_rpm: int = Field(default=10, ge=1, le=1_000_000)
    user_rpm: int = Field(default=60, ge=1, le=1_000_000)
    register_per_ip_per_hour: int = Field(default=5, ge=1, le=1_000_000)
    auto_pause_after: int = Field(default=5, ge=0, le=10_000)  # the initial setting (docs/behaviour.md)
    channel_retest_seconds: float = Field(default=30.0, ge=0.2, le=3600)  # a paused channel's first re-test
    rate_limit_storage: str = "memory://"
    trusted_proxies: str = ""
    cors_origins: str = "*"
    ui_origins: str = ""
    app_host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on every interface
    app_port: int = Field(default=8000, ge=1, le=65535)
    tz: str = "UTC"
    user_token_hours: int = Field(default=24 * 7, ge=1, le=24 * 365)
    upstream_connect_timeout: float = Field(default=10.0, gt=0, le=600)
    upstream_first_byte_timeout: float = Field(default=60.0, gt=0, le=3600)
    upstream_idle_timeout: float = Field(default=120.0, gt=0, le=3600)
    # what one request or one upstream answer may make the process hold (docs/behaviour.md#request-limits)
    max_body_bytes: int = Field(default=MIB, ge=1024, le=1024 * MIB)
    max_chat_body_bytes: int = Field(default=32 * MIB, ge=1024, le=1024 * MIB)
    max_upstream_body_bytes: int = Field(default=16 * MIB, ge=64 * 1024, le=1024 * MIB)
    header_read_timeout: float = Field(default=10.0, gt=0, le=600)
    max_connections: int = Field(default=0, ge=0, le=1_000_000)  # 0: no limit (docs/configuration.md)
    cache_refresh_seconds: float = Field(default=2.0, ge=0.5, le=300)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    # a PEM file of CAs trusted for upstream calls in addition to the public roots
    upstream_ca_bundle: str | None = None
    # who may read /metrics without an admin token (CIDRs, the client IP as TRUSTED_PROXIES decides it)
    metrics_allow: str = ""
    log_format: Literal["text", "json"] = "text"

    @field_validator("admin_password", "secret_key", "encryption_key", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("upstream_ca_bundle", mode="before")
    @classmethod
    def _readable_ca_bundle(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not os.path.isfile(value):
            raise ValueError("UPSTREAM_CA_BUNDLE must name a readable PEM file")
        return value

    @field_validator("admin_username")
    @classmethod
    def _printable_username(cls, value: str) -> str:
        if has_control_characters(value):
            raise ValueError("control characters are not allowed")
        return value

    @field_validator("admin_password")
    @classmethod
    def _printable_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and has_control_characters(value.get_secret_value()):
            raise ValueError("control characters are not allowed")  # bcrypt refuses a NUL at start
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """Caught here, a malformed URL is one line naming the variable, never echoing it (it may hold a
        password)."""
        if value is None:
            return None
        authority = value.split("://", 1)[-1].split("/", 1)[0]
        if authority.count("@") > 1:
            raise ValueError("the user name or password holds an '@': write it as %40")
        try:
            make_url(value)  # also parses the port
        except (ArgumentError, ValueError):
            raise ValueError("not a database URL (e.g. postgresql+psycopg://user:password@host/db)") from None
        return value

    @field_validator("tz")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        scheme = value.removeprefix("async+").split("://", 1)[0]
        if "://" not in value or scheme not in (
            "memory",
            "redis",
            "rediss",
            "redis+sentinel",
            "redis+cluster",
        ):
            raise ValueError("use memory:// or redis://host:6379")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        for item in _split_csv(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR range") from exc
        return value

    @property
    def asks_for_production(self) -> bool:
        """Production when told so, or as soon as the operator sets any secret (docs/configuration.md)."""
        return self.pyaichat_env == "production" or any(
            value is not None for value in (self.admin_password, self.secret_key, self.encryption_key)
        )

    @property
    def is_production(self) -> bool:
        """The mode decided at load time (dev mode fills the secrets but stays ``development``)."""
        return self.pyaichat_env == "production"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.database_path).expanduser()}"

    @property
    def data_dir(self) -> Path:
        """Where dev secrets live: next to the SQLite file (or ./data with an external database)."""
        if self.database_url:
            return Path("./data").resolve()
        return Path(self.database_path).expanduser().resolve().parent

    @property
    def journal_dir(self) -> Path:
        """The call-log journal (``services/journal.py``): on the data volume, next to the database."""
        return self.data_dir / "call-log-journal"

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in _split_csv(self.trusted_proxies)]

    @property
    def metrics_allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in _split_csv(self.metrics_allow)]

    @field_validator("ui_origins")
    @classmethod
    def _valid_origins(cls, value: str) -> str:
        for item in _split_csv(value):
            scheme, _, rest = item.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest.rstrip("/"):
                raise ValueError(f"{item!r} is not an origin such as https://chat.example.com")
        return value

    @property
    def ui_origin_list(self) -> list[str]:
        return _split_csv(self.ui_origins)

    @property
    def cors_origin_list(self) -> list[str]:
        return _split_csv(self.cors_origins) or ["*"]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def secret(self, name: Literal["admin_password", "secret_key", "encryption_key"]) -> str:
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise ConfigError(f"{name.upper()} is not resolved")
        return value.get_secret_value()


@dataclass(frozen=True)
class StartupInfo:
    """What the banner should tell the operator about how secrets were obtained."""

    generated: list[str] = field(default_factory=list)
    loaded_from_file: list[str] = field(default_factory=list)
    secrets_file: Path | None = None
    generated_admin_password: str | None = None


def _split_csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "invalid configuration: " + "; ".join(parts)


def _check_production_secrets(settings: Settings) -> None:
    for name in ("secret_key", "encryption_key", "admin_password"):
        value: SecretStr | None = getattr(settings, name)
        env_name = name.upper()
        if value is None:
            raise ConfigError(f"{env_name} is not set; production mode needs every secret (see .env.example)")
        plain = value.get_secret_value()
        if plain.strip().lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(f"{env_name} is a placeholder value; set a real secret")
    if len(settings.secret("secret_key")) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short; use at least {MIN_SECRET_KEY_LENGTH} characters")
    if len(settings.secret("admin_password")) < MIN_ADMIN_PASSWORD_LENGTH:
        raise ConfigError(f"ADMIN_PASSWORD is too short; use at least {MIN_ADMIN_PASSWORD_LENGTH} characters")
    if len(settings.secret("admin_password").encode()) > 72:
        raise ConfigError("ADMIN_PASSWORD is too long; bcrypt uses at most 72 bytes")


def _resolve_dev_secrets(settings: Settings) -> tuple[Settings, StartupInfo]:
    """Fill missing secrets from the data directory's secrets file, generating what it lacks."""
    path = settings.data_dir / SECRETS_FILE_NAME
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the dev secrets file {path}: {exc}") from exc
    generated: list[str] = []
    loaded: list[str] = []
    updates: dict[str, SecretStr] = {}
    for name in ("secret_key", "encryption_key", "admin_password"):
        if getattr(settings, name) is not None:
            continue
        if isinstance(stored.get(name), str) and stored[name]:
            loaded.append(name.upper())
        else:
            stored[name] = secrets.token_urlsafe(18 if name == "admin_password" else 48)
            generated.append(name.upper())
        updates[name] = SecretStr(stored[name])
    if generated:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stored, handle, indent=2)
            tmp.replace(path)
        except OSError as exc:
            raise ConfigError(f"cannot write the dev secrets file {path}: {exc}") from exc
    info = StartupInfo(
        generated=generated,
        loaded_from_file=loaded,
        secrets_file=path,
        generated_admin_password=stored["admin_password"] if "ADMIN_PASSWORD" in generated else None,
    )
    return settings.model_copy(update=updates), info


def read_environment(**overrides: Any) -> Settings:
    """The validated environment, secrets unresolved (enough for work that needs no secret, such as
    ``python -m app db``); ``overrides`` (fields by name, from the command line) win over it. Raises
    :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None


def load_settings(**overrides: Any) -> tuple[Settings, StartupInfo]:
    """Read the environment once, validate it and resolve the secrets (raises :class:`ConfigError`).
    ``overrides`` (fields by name, from the command line) win over the environment."""
    settings = read_environment(**overrides)
    if settings.asks_for_production:
        _check_production_secrets(settings)
        return settings.model_copy(update={"pyaichat_env": "production"}), StartupInfo()
    return _resolve_dev_secrets(settings)
