"""SQLModel tables (docs/data-model.md): the requirement's names and columns, plus what the contract adds.

Times are timezone-aware UTC datetimes (SQLModel's UTC column type); periods shown to people use ``TZ``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import field_validator, model_validator
from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, Text, false
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel, col

from services import channel_fields as fields
from services.errors import InputRule, InvalidInput

_V = TypeVar("_V")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the form every table stores)."""
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (Index("idx_users_email", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, nullable=False)
    password_hash: str = Field(nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    # Revision 0004: access control. Tokens carry ``token_version``; raising it ends every session.
    disabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    token_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    rpm_limit: int | None = None  # NULL: the global user_rpm
    last_active_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    """A personal API key (``sk-…``). Only its SHA-256 is stored; the key is shown once, at creation.
    A revoked key keeps its row (``revoked_at``) so that call logs can still name it."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("idx_api_keys_user_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(nullable=False)
    name: str = Field(max_length=100, nullable=False)
    prefix: str = Field(max_length=16, nullable=False)  # the key's first characters, shown in lists
    key_hash: str = Field(max_length=64, unique=True, nullable=False)  # hex SHA-256 of the whole key
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class AuditLog(SQLModel, table=True):
    """One admin change or admin-console login. ``changes`` is a JSON object of the fields that changed;
    a secret's value is never in it (only that it changed)."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("idx_audit_logs_created_at", "created_at"),
        Index("idx_audit_logs_action", "action", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    admin: str = Field(max_length=64, nullable=False)  # who (for a failed login: the name tried)
    ip_address: str = Field(max_length=64, nullable=False)
    action: str = Field(max_length=64, nullable=False)  # e.g. channel.update, admin.login_failed
    target: str | None = Field(default=None, max_length=300)  # e.g. "channel 3 (OpenAI)"
    changes: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))


class Admin(SQLModel, table=True):
    """The admin account, created or updated at start from ``ADMIN_USERNAME`` / ``ADMIN_PASSWORD``."""

    __tablename__ = "admins"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, nullable=False)
    password_hash: str = Field(nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)


class Channel(SQLModel, table=True):
    __tablename__ = "channels"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, nullable=False)
    base_url: str = Field(max_length=500, nullable=False)
    api_key: str = Field(sa_column=Column(Text, nullable=False))  # Fernet token, never the plain key
    model_id: str = Field(max_length=200, nullable=False, index=True)
    rpm_limit: int = Field(default=60, nullable=False)
    is_enabled: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)
    # Several models per channel (revision 0003). ``model_id`` stays: the first of ``models``.
    models: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))  # JSON
    model_map: str = Field(  # JSON object: the name users see -> the upstream's model id
        default="{}", sa_column=Column(Text, nullable=False, server_default="{}")
    )
    priority: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    weight: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    proxy: str | None = Field(default=None, sa_column=Column(Text))  # Fernet token; NULL: the environment's
    headers: str | None = Field(default=None, sa_column=Column(Text))  # Fernet token of a JSON object
    auto_pause_after: int | None = None  # NULL: the setting's default; 0: never
    # Health, written by the chat path and the channel tests.
    auto_paused: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    consecutive_failures: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    last_error: str | None = Field(default=None, max_length=300)  # a reason code and its words, no secret
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    latency_ms: int | None = None  # the average of the last calls
    stream_options_unsupported: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class SystemConfig(SQLModel, table=True):
    __tablename__ = "system_config"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, nullable=False)
    value: str = Field(nullable=False)
    description: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)


class ModelSetting(SQLModel, table=True):
    """Revision 0007: an admin's defaults for one public model name (the chat page's conversation
    settings start from them) and whether the model takes images. No row: no defaults, no images."""

    __tablename__ = "model_settings"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=200, unique=True, nullable=False)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    vision: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)


class BlockedIP(SQLModel, table=True):
    __tablename__ = "blocked_ips"
    __table_args__ = (Index("idx_blocked_ips_ip_address", "ip_address"),)

    id: int | None = Field(default=None, primary_key=True)
    ip_address: str = Field(max_length=64, nullable=False)  # an address or a CIDR range
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)


class BlockedAttempt(SQLModel, table=True):
    """A request refused by the IP block list (ip, path, matched rule, time)."""

    __tablename__ = "blocked_attempts"
    __table_args__ = (Index("idx_blocked_attempts_last_seen_at", "last_seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    ip_address: str = Field(max_length=64, nullable=False)
    path: str = Field(max_length=500, nullable=False)
    matched_rule: str = Field(max_length=64, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    last_seen_at: datetime = Field(default_factory=utcnow, nullable=False)
    hits: int = Field(default=1, nullable=False)  # requests of this ip/path/rule folded into this row


# a call's tokens, as the log page sorts on them (and its index holds them: the same expression)
TOKENS_SQL = "(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))"


class ChatLog(SQLModel, table=True):
    """One row per chat call. Never any message content."""

    __tablename__ = "chat_logs"
    # Every index is paid for on each insert, so there is one per filter and sort of the log page and no
    # more: the required user and IP indexes carry created_at too, which serves "this user's / this IP's
    # newest calls" and their counts without a sort; the e-mail filter goes through the user's id. The
    # duration and tokens sorts have one each (without, a first page sorted a whole table of 10M rows:
    # about 2 s; with, under a millisecond, for a third less write throughput: docs/performance.md), and
    # on PostgreSQL the longest-first duration sort a second (below the class).
    __table_args__ = (
        Index("idx_chat_logs_created_at", "created_at"),
        Index("idx_chat_logs_user_id", "user_id", "created_at"),
        Index("idx_chat_logs_ip_address", "ip_address", "created_at"),
        Index("idx_chat_logs_model_created", "model_id", "created_at"),
        Index("idx_chat_logs_duration", "duration_ms", "id"),
        Index("idx_chat_logs_tokens", sql_text(TOKENS_SQL), "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = None
    username: str | None = Field(default=None, max_length=254)
    ip_address: str = Field(max_length=64, nullable=False)
    channel_id: int | None = None
    model_id: str = Field(max_length=200, nullable=False)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    status: str = Field(default="ok", max_length=32, nullable=False)
    tokens_estimated: bool = Field(default=False, nullable=False)
    duration_ms: int | None = None
    error: str | None = Field(default=None, max_length=32)  # a reason code (docs/data-model.md), never a body
    api_key_id: int | None = None  # the personal key the call was made with (revision 0004)
    ttft_ms: int | None = None  # a stream's first event after this long (revision 0006); None otherwise


ONLY_ON = "only_on"  # an index's ``info`` key: the one database it is made on


# The duration sort, longest first, puts the rows without a duration last. SQLite, where NULL sorts
# lowest, reads idx_chat_logs_duration backwards for it; on PostgreSQL that gives NULLs first, and without
# this index (revision 0009) a first page sorted all of chat_logs (250 ms at 1M rows).
Index(
    "idx_chat_logs_duration_desc",
    col(ChatLog.duration_ms).desc().nulls_last(),
    col(ChatLog.id).desc(),
    info={ONLY_ON: "postgresql"},  # read by app.migrate.declared_for
).ddl_if(dialect="postgresql")


class CallLogJournal(SQLModel, table=True):
    """How far each call-log journal (one run of one instance, ``services/journal.py``) is stored in
    ``chat_logs``: advanced in the same transaction as the rows, so a replay after a crash skips
    exactly what is already there."""

    __tablename__ = "call_log_journals"

    journal_id: str = Field(primary_key=True, max_length=32)
    seq: int = Field(sa_type=BigInteger, nullable=False)  # the last record of the journal stored
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)


class DailyModelStats(SQLModel, table=True):
    """Calls and tokens per local day (``TZ``) and model, kept in step with every log insert so the
    dashboard never scans ``chat_logs``."""

    __tablename__ = "stats_daily_models"

    day: date = Field(primary_key=True)
    model_id: str = Field(primary_key=True, max_length=200)
    calls: int = Field(default=0, nullable=False)
    prompt_tokens: int = Field(default=0, nullable=False)
    completion_tokens: int = Field(default=0, nullable=False)


class PeriodActor(SQLModel, table=True):
    """Who was active in a local day, week (from Monday) or month: ``u:<user id>`` for users,
    ``ip:<address>`` for guests. Counting a period's active users reads only that period's rows."""

    __tablename__ = "stats_period_actors"

    kind: str = Field(primary_key=True, max_length=1)  # "d", "w" or "m"
    start: date = Field(primary_key=True)  # the period's first local day
    actor: str = Field(primary_key=True, max_length=80)


class PeriodActorCount(SQLModel, table=True):
    """How many rows ``stats_period_actors`` holds per period: the dashboard's active users of today,
    this week and this month in three rows. Kept by triggers on ``stats_period_actors`` (revision 0012),
    so that it counts every writer's rows, an instance of an earlier version's too; a period with no
    actor has no row. Never written by the code."""

    __tablename__ = "stats_period_actor_counts"

    kind: str = Field(primary_key=True, max_length=1)  # "d", "w" or "m", as in PeriodActor
    start: date = Field(primary_key=True)
    actors: int = Field(nullable=False)


class DailyCount(SQLModel, table=True):
    """Per local day, named counters (revision 0006): ``ok`` calls, ``error:<reason>`` (failed calls by
    reason code or status), ``refusal_guest`` / ``refusal_user`` / ``refusal_channel`` (429s and busy
    503s: not call rows) and ``blocked`` (requests refused by the block list). Only ever incremented,
    so several instances add to the same row."""

    __tablename__ = "stats_daily_counts"

    day: date = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=48)
    count: int = Field(default=0, nullable=False, sa_type=BigInteger)


class DailyChannelStats(SQLModel, table=True):
    """Calls, successes and failures per local day and channel (0: a call no channel took)."""

    __tablename__ = "stats_daily_channels"

    day: date = Field(primary_key=True)
    channel_id: int = Field(primary_key=True)
    calls: int = Field(default=0, nullable=False)
    ok: int = Field(default=0, nullable=False)
    errors: int = Field(default=0, nullable=False)


class DailyLatency(SQLModel, table=True):
    """How many calls per local day fell into each latency bucket (``metric`` ``d``: duration, ``t``:
    time to first event of a stream); buckets grow by 10 % each (services/rollups.py), so a day has at
    most some 150 rows per metric whatever the number of calls."""

    __tablename__ = "stats_daily_latency"

    day: date = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=1)
    bucket: int = Field(primary_key=True)
    calls: int = Field(default=0, nullable=False)


class DailyCaller(SQLModel, table=True):
    """Calls per local day and caller (``u:<user id>`` or ``ip:<address>``, as in PeriodActor): the top
    users and IPs of a range. Kept as long as the call log (IPs are personal data)."""

    __tablename__ = "stats_daily_callers"

    day: date = Field(primary_key=True)
    actor: str = Field(primary_key=True, max_length=80)
    calls: int = Field(default=0, nullable=False)
    # the caller's latest earlier day (None: none), kept by a trigger on insert (revision 0013); a day no
    # longer kept (before the earliest in the table) means none as well
    prev_day: date | None = Field(default=None, nullable=True)


# A caller's days in order (the trigger's seeks) and each day's callers by their previous day (how many of
# today's callers a range has not seen; revision 0013).
Index("idx_stats_daily_callers_actor", col(DailyCaller.actor), col(DailyCaller.day))
Index("idx_stats_daily_callers_new", col(DailyCaller.day), col(DailyCaller.prev_day))


# One day's top callers, most calls first (ties by actor as bytes, as ranked over a range), read in order
# instead of ranking every caller of the day (3,115 at 10M rows: 4 ms → 0.1 ms; revision 0010). SQLite
# compares text as bytes already; on PostgreSQL the ties are ordered ``COLLATE "C"``, which an index in the
# database's collation cannot give: PostgreSQL sorted every caller tied with the tenth (a day of 50,000
# one-call guests: 10 ms), so there the index holds ``actor COLLATE "C"`` instead (revision 0011).
Index(
    "idx_stats_daily_callers_top",
    col(DailyCaller.day),
    col(DailyCaller.calls).desc(),
    col(DailyCaller.actor),
    info={ONLY_ON: "sqlite"},  # read by app.migrate.declared_for
).ddl_if(dialect="sqlite")
Index(
    "idx_stats_daily_callers_top_bytewise",
    col(DailyCaller.day),
    col(DailyCaller.calls).desc(),
    col(DailyCaller.actor).collate("C"),
    info={ONLY_ON: "postgresql"},  # read by app.migrate.declared_for
).ddl_if(dialect="postgresql")


# ---- request/response families of the channel entity -------------------------------------------------


def _rule(check: Callable[..., _V], *args: Any) -> _V:
    """A service rule as a pydantic validator: its message (naming the field) becomes the error's, in the
    language of whoever reads it (the API's request, the dialog's visitor)."""
    try:
        return check(*args)
    except InvalidInput as exc:
        raise InputRule(exc) from None


class _ChannelFields(SQLModel):
    """What create and update share: each field's own rule, so that every bad field is reported at once."""

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else _rule(fields.normalize_base_url, value)

    @field_validator("model_id", check_fields=False)
    @classmethod
    def _model_id(cls, value: str | None) -> str | None:
        return None if value is None else _rule(fields.clean_model_name, value, "model_id")

    @field_validator("models", check_fields=False)
    @classmethod
    def _models(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _rule(fields.normalize_models, value)

    @field_validator("proxy", check_fields=False)
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        return None if value is None else _rule(fields.normalize_proxy_url, value)

    def resolved_models(self) -> list[str] | None:
        """``models``, or ``[model_id]`` (the one-model shorthand); None when neither was given."""
        models: list[str] | None = getattr(self, "models", None)
        model_id: str | None = getattr(self, "model_id", None)
        if models is not None:
            if model_id is not None and model_id not in models:
                raise InputRule(InvalidInput("channel_fields.model_id_not_in_models"))
            return models
        return None if model_id is None else [model_id]


class ChannelCreate(_ChannelFields):
    name: str = Field(min_length=1, max_length=100)
    base_url: str = Field(
        min_length=1,
        max_length=500,
        description="OpenAI-style base URL as typed, e.g. https://api.openai.com/v1 "
        "(a pasted …/chat/completions is cut, a base without a path gets /v1, a query string is kept)",
    )
    api_key: str = Field(min_length=1, max_length=1000)
    models: list[str] | None = Field(default=None, description="the model ids this channel serves")
    model_id: str | None = Field(default=None, max_length=200, description="one-model shorthand for models")
    model_map: dict[str, str] = Field(default_factory=dict, description="public name -> upstream model id")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description="higher is tried first")
    weight: int = Field(default=1, ge=1, le=10_000, description="share among channels of equal priority")
    rpm_limit: int = Field(default=60, ge=1, le=1_000_000)
    is_enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (write-only)")
    proxy: str | None = Field(
        default=None, max_length=1000, description='null: the environment\'s proxy; "": direct; or a URL'
    )
    auto_pause_after: int | None = Field(
        default=None, ge=0, le=10_000, description="pause after N consecutive failures; 0 never; null default"
    )

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _rule(fields.normalize_headers, value)

    @model_validator(mode="after")
    def _models_and_map(self) -> ChannelCreate:
        models = self.resolved_models()
        if models is None:
            raise InputRule(InvalidInput("channel_fields.models_none"))
        self.models, self.model_id = models, models[0]
        self.model_map = _rule(fields.normalize_model_map, self.model_map, models)
        return self


class ChannelUpdate(_ChannelFields):
    """Any subset; a field left out keeps its value. ``api_key`` empty or left out keeps the key;
    ``proxy`` null means the environment's proxy again; a header sent as null keeps its stored value."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    base_url: str | None = Field(default=None, min_length=1, max_length=500)
    api_key: str | None = Field(
        default=None, max_length=1000, description="omit (or send empty) to keep the stored key"
    )
    models: list[str] | None = None
    model_id: str | None = Field(default=None, max_length=200)
    model_map: dict[str, str] | None = None
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    weight: int | None = Field(default=None, ge=1, le=10_000)
    rpm_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    is_enabled: bool | None = Field(default=None, description="true also resumes an auto-paused channel")
    headers: dict[str, str | None] | None = None
    proxy: str | None = Field(default=None, max_length=1000)
    auto_pause_after: int | None = Field(default=None, ge=0, le=10_000)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is None:
            return None
        given = {name: text for name, text in value.items() if text is not None}
        checked: dict[str, str | None] = dict(_rule(fields.normalize_headers, given))
        for name, text in value.items():
            if text is None:
                checked[_rule(fields.normalize_headers, {name: "x"}).popitem()[0]] = None
        return checked

    @model_validator(mode="after")
    def _model_id_in_models(self) -> ChannelUpdate:
        self.resolved_models()
        return self


class ChannelStatus(StrEnum):
    enabled = "enabled"
    disabled = "disabled"
    auto_paused = "auto_paused"


class ChannelPublic(SQLModel):
    id: int
    name: str
    base_url: str = Field(description="as typed")
    call_url: str = Field(description="the exact URL chat calls go to")
    model_id: str = Field(description="the first of models")
    models: list[str]
    model_map: dict[str, str]
    priority: int
    weight: int
    rpm_limit: int
    is_enabled: bool
    api_key_masked: str
    api_key_readable: bool = Field(
        description="false when the stored key cannot be decrypted with ENCRYPTION_KEY"
    )
    headers: dict[str, str] = Field(description="extra headers, values masked")
    proxy_set: bool = Field(description="true when the channel has its own proxy setting (a URL or direct)")
    proxy_direct: bool = Field(description='true when the channel is set to "no proxy"')
    auto_pause_after: int | None
    status: ChannelStatus
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    latency_ms: int | None = Field(description="average of the last calls")
    created_at: datetime
    updated_at: datetime


class ChannelListItem(ChannelPublic):
    """A row of the admin's paged channel list: the channel and its calls since the local midnight."""

    calls_today: int = Field(description="call-log rows since 00:00 in TZ")
