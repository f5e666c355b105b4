"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models import ChannelListItem
from services.auth import check_credential_text, check_password_rules, normalize_email
from services.errors import InputRule, InvalidInput


def _rule(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except InvalidInput as exc:
        raise InputRule(exc) from None


class ErrorDetail(BaseModel):
    type: str = Field(examples=["rate_limit_exceeded"])
    message: str = Field(examples=["您超过当前使用限制，请稍后再试"])
    retry_after: int | None = Field(default=None, description="seconds until a request may succeed")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Credentials(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "user@example.com", "password": "password123"}]}
    )

    email: str = Field(max_length=320, description="email address (case-insensitive)")
    password: str = Field(max_length=1024, description="8+ characters, at most 72 bytes in UTF-8")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _rule(normalize_email, value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _rule(check_password_rules, value)


class AdminCredentials(BaseModel):
    username: str = Field(min_length=1, max_length=64, description="no control characters")
    password: str = Field(min_length=1, max_length=1024, description="no control characters")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return _rule(lambda text: check_credential_text(text, "errors.what.username"), value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _rule(lambda text: check_credential_text(text, "errors.what.password"), value)


class MessageResponse(BaseModel):
    message: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds until the token expires")


class UserPublic(BaseModel):
    id: int
    email: str


class HealthChecks(BaseModel):
    database: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable", "not_used"] = Field(
        description="the rate-limit storage; not_used unless RATE_LIMIT_STORAGE is Redis"
    )


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(examples=["ok"])
    checks: HealthChecks


# ---- chat ------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    """An OpenAI chat message; fields beyond these (``name``, ``tool_calls``, …) are passed through."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI ``/chat/completions`` body; sampling fields (``temperature``, …) pass through."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "你好"}], "stream": True}
            ]
        },
    )

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=5000)
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    def upstream_body(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ModelSummary(BaseModel):
    id: str = Field(examples=["gpt-4o-mini"])
    name: str = Field(examples=["OpenAI 主渠道"])


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "pyaichat"
    vision: bool = Field(default=False, description="takes image parts (an admin marked it so)")


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class ChatCompletionResponse(BaseModel):
    """An OpenAI ``chat.completion`` (``message.reasoning_content`` when the model thinks)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    object: str = "chat.completion"
    model: str | None = None
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ChannelTestResult(BaseModel):
    """``services.channel_test.ProbeResult`` on the wire."""

    model_config = ConfigDict(from_attributes=True)

    ok: bool = Field(description="both the plain and the streamed call passed")
    latency_ms: int | None = None
    status_code: int | None = None
    error: str | None = Field(default=None, description="which call failed, and why (never a key)")
    stream_ok: bool | None = Field(default=None, description="the streamed call passed (null: not tried)")


# ---- admin: settings and IP block list ---------------------------------------------------------------


class SystemConfigBody(BaseModel):
    guest_rpm: int = Field(ge=1, le=1_000_000, description="requests per minute per guest IP")
    user_rpm: int = Field(ge=1, le=1_000_000, description="requests per minute per logged-in user")
    log_retention_days: int = Field(ge=1, le=36_500, description="days call logs are kept")
    register_per_ip_per_hour: int = Field(
        ge=1, le=1_000_000, description="registrations per client IP per hour"
    )
    auto_pause_after: int = Field(
        ge=0, le=10_000, description="consecutive failures that pause a channel (its default); 0 never"
    )
    guest_enabled: bool = Field(description="false: callers without a token get 401 authentication_required")
    registration_enabled: bool = Field(
        description="false: POST /api/auth/register answers 403 registration_closed (admins still create)"
    )


class SystemConfigUpdate(BaseModel):
    """Any subset of the settings: integers in their ranges, the switches as JSON true / false."""

    model_config = ConfigDict(extra="forbid")

    guest_rpm: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    user_rpm: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    log_retention_days: int | None = Field(default=None, ge=1, le=36_500, strict=True)
    register_per_ip_per_hour: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    auto_pause_after: int | None = Field(default=None, ge=0, le=10_000, strict=True)
    guest_enabled: bool | None = Field(default=None, strict=True)
    registration_enabled: bool | None = Field(default=None, strict=True)


class ModelSettingsUpdate(BaseModel):
    """Any subset of a model's settings; ``null`` clears a default (the upstream's own applies)."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, max_length=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000, strict=True)
    vision: bool | None = Field(default=None, strict=True, description="the model takes image parts")


class ModelSettingsPublic(BaseModel):
    """A public model name's defaults for the chat page, and whether it takes images."""

    model: str = Field(examples=["gpt-4o-mini"])
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    vision: bool = False
    served: bool = Field(default=True, description="an enabled channel serves this model now")


class BlockedIPCreate(BaseModel):
    ip_address: str = Field(
        min_length=1, max_length=100, examples=["203.0.113.7", "192.168.1.0/24", "2001:db8::/32"]
    )
    reason: str | None = Field(default=None, max_length=500)
    confirm_all: bool = Field(
        default=False, description="required for a /0 range, which blocks every IPv4 or every IPv6 user"
    )


class BlockedIPPublic(BaseModel):
    id: int
    ip_address: str
    reason: str | None
    created_at: datetime


class BlockedAttemptPublic(BaseModel):
    id: int
    ip_address: str
    path: str
    matched_rule: str
    created_at: datetime = Field(description="first blocked request folded into this row")
    last_seen_at: datetime
    hits: int


# ---- admin: logs and statistics -------------------------------------------------------------------


class ChatLogPublic(BaseModel):
    id: int
    created_at: datetime
    ip_address: str
    user_id: int | None
    username: str | None = Field(
        description="the user's email; null for guests; 已删除用户 (Deleted user) once deleted"
    )
    user_deleted: bool = Field(default=False, description="the call's account has been deleted since")
    model_id: str
    channel_id: int | None
    channel_name: str | None
    status: str = Field(examples=["ok", "upstream_error", "client_aborted", "timeout", "server_shutdown"])
    error: str | None = Field(
        default=None,
        description="a reason code (docs/api.md#reason-codes) when the call failed",
        examples=["tls"],
    )
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_estimated: bool = Field(description="true when the upstream reported no usage")
    duration_ms: int | None
    api_key_id: int | None = Field(default=None, description="the personal API key used, if any")


class ChannelListPage(BaseModel):
    items: list[ChannelListItem]
    total: int
    page: int
    page_size: int


class LogPageResponse(BaseModel):
    items: list[ChatLogPublic]
    total: int = Field(
        description="the calls that match; when total_capped, the calls counted so far (there are more)"
    )
    page: int
    page_size: int
    total_capped: bool = Field(
        False,
        description=(
            "true when more calls match than were counted: counting stops 10,000 calls past the page's "
            "last (an exact count of a large log is a scan of all of it)"
        ),
    )


# ---- admin: audit log -----------------------------------------------------------------------------


class AuditEntryPublic(BaseModel):
    id: int
    created_at: datetime
    admin: str = Field(description="the admin's name; for admin.login_failed the name tried")
    ip_address: str
    action: str = Field(examples=["channel.update", "settings.update", "admin.login_failed"])
    target: str | None = Field(examples=["channel 3 (OpenAI)"])
    changes: dict[str, Any] = Field(
        description='field -> {"old", "new"}; a secret only as "set", "changed" or "removed"',
        examples=[{"rpm_limit": {"old": 60, "new": 120}, "api_key": "changed"}],
    )


class AuditPageResponse(BaseModel):
    items: list[AuditEntryPublic]
    total: int
    page: int
    page_size: int


class TokenTotals(BaseModel):
    prompt: int
    completion: int


class PeriodCounts(BaseModel):
    today: int
    week: int = Field(description="since Monday")
    month: int


class PeriodTokens(BaseModel):
    today: TokenTotals
    week: TokenTotals
    month: TokenTotals


class ModelShare(BaseModel):
    model_id: str
    calls: int


class Percentiles(BaseModel):
    p50: int | None = Field(description="ms; null without calls")
    p95: int | None


class Refusals(BaseModel):
    guest: int = Field(description="429s of the guest limit")
    user: int = Field(description="429s of the user limit")
    channel: int = Field(description="503s: every channel of the model at its RPM")


class TrendPoint(BaseModel):
    date: str = Field(examples=["2026-11-24"])
    calls: int
    tokens: TokenTotals
    ok: int
    errors: int = Field(description="calls that did not end ok (any reason)")
    refusals: Refusals
    blocked_attempts: int
    duration_ms: Percentiles
    ttft_ms: Percentiles


class RangeTotals(BaseModel):
    start: str
    end: str
    calls: int
    tokens: TokenTotals
    active_users: int = Field(description="distinct users; guests counted by IP")
    models: list[ModelShare]


class ChannelCalls(BaseModel):
    channel_id: int | None = Field(description="null: calls no channel took")
    name: str
    calls: int
    errors: int = Field(description="calls that failed (upstream_error, timeout)")


class TopUser(BaseModel):
    user_id: int
    email: str | None
    calls: int


class TopIP(BaseModel):
    ip_address: str
    calls: int


class StatsResponse(BaseModel):
    time_zone: str
    calls: PeriodCounts
    tokens: PeriodTokens
    active_users: PeriodCounts = Field(description="distinct users; guests counted by IP")
    models: list[ModelShare] = Field(description="calls per model this month")
    trend: list[TrendPoint] = Field(
        description="per day, oldest first: the range's days, or the last 7 days without start/end"
    )
    range: RangeTotals
    success_rate: float | None = Field(description="ok calls / calls in the range (0..1); null without calls")
    duration_ms: Percentiles
    ttft_ms: Percentiles = Field(description="time to a stream's first event")
    refusals: Refusals
    blocked_attempts: int
    errors: dict[str, int] = Field(description="calls that did not end ok, by reason code (or status)")
    per_channel: list[ChannelCalls]
    top_users: list[TopUser]
    top_ips: list[TopIP]


# ---- admin: users ----------------------------------------------------------------------------------


class AdminUserPublic(BaseModel):
    """A user as the admin sees them (``services.users.UserRow``)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    created_at: datetime
    last_active_at: datetime | None = Field(description="the last call or sign-in; null: never")
    disabled: bool
    rpm_limit: int | None = Field(description="the user's own requests per minute; null: the global user_rpm")


class AdminUserPage(BaseModel):
    items: list[AdminUserPublic]
    total: int
    page: int
    page_size: int


class AdminUserUpdate(BaseModel):
    """Either field or both; ``rpm_limit: null`` returns the user to the global ``user_rpm``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"disabled": True}]})

    disabled: bool | None = Field(default=None, strict=True, description="true also ends every session")
    rpm_limit: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)

    @field_validator("disabled", mode="before")
    @classmethod
    def _disabled_not_null(cls, value: object) -> object:
        if value is None:
            raise InputRule(InvalidInput("errors.bool_value"))
        return value


class AdminPasswordReset(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"password": "temporary-pass-1"}]})

    password: str = Field(max_length=1024, description="8+ characters, at most 72 bytes in UTF-8")

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _rule(check_password_rules, value)
