"""The domain error tree. Routers map it to JSON bodies in one handler; pages show it in dialogs.

::

    DomainError                      status  type
    ├── ImagesNotSupported           400     images_not_supported  (images sent to a model not marked vision)
    ├── InvalidInput                 422     validation_error
    ├── NotFound                     404     not_found
    │   └── ModelNotFound            404     model_not_found
    ├── Conflict                     409     conflict
    ├── AuthenticationFailed         401     unauthorized
    │   ├── AuthenticationRequired   401     authentication_required  (guests are switched off)
    │   ├── InvalidApiKey            401     invalid_api_key   (bad, revoked, expired or unknown key)
    │   └── AccountDisabledCredential 401    account_disabled  (a disabled user's token or key)
    ├── PermissionDenied             403     forbidden
    │   ├── IPBlocked                403     ip_blocked
    │   ├── RegistrationClosed       403     registration_closed
    │   └── AccountDisabled          403     account_disabled  (a disabled user's sign-in)
    ├── RateLimited                  429     rate_limit_exceeded   (+ retry_after)
    ├── UpstreamUnavailable          503     upstream_error        (+ retry_after when known)
    ├── LimiterUnavailable           503     service_unavailable   (the rate-limit storage is unreachable;
    │                                                              + retry_after, header only)
    ├── StateUnavailable             503     service_unavailable   (settings, block list or channels too old)
    ├── AuditUnavailable             503     service_unavailable   (an admin action's audit row could not be
    │                                                              written: the action is refused)
    └── ShuttingDown                 503     server_shutdown       (the instance is stopping: try again)

``status`` is the HTTP status the API answers with; the message is safe to show to anyone.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "请求无效"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.message}}

    def headers(self) -> dict[str, str]:
        return {}


class ImagesNotSupported(DomainError):
    status = 400
    type = "images_not_supported"
    default_message = "该模型不支持图片，请去掉图片或换一个支持图片的模型"


class InvalidInput(DomainError):
    status = 422
    type = "validation_error"
    default_message = "输入无效"


class NotFound(DomainError):
    status = 404
    type = "not_found"
    default_message = "资源不存在"


class ModelNotFound(NotFound):
    type = "model_not_found"
    default_message = "模型不存在或未启用"


class PayloadTooLarge(DomainError):
    status = 413
    type = "payload_too_large"
    default_message = "请求体过大"


class Conflict(DomainError):
    status = 409
    type = "conflict"
    default_message = "资源冲突"


class AuthenticationFailed(DomainError):
    status = 401
    type = "unauthorized"
    default_message = "未登录或登录已过期"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class AuthenticationRequired(AuthenticationFailed):
    """A guest (no token) while the ``guest_enabled`` setting is off."""

    type = "authentication_required"
    default_message = "本站已关闭访客使用，请先登录"


class InvalidApiKey(AuthenticationFailed):
    """One answer for a revoked, expired, malformed or unknown key: no hint which."""

    type = "invalid_api_key"
    default_message = "API 密钥无效、已撤销或已过期"


class AccountDisabledCredential(AuthenticationFailed):
    type = "account_disabled"
    default_message = "账号已被停用，请联系管理员"


class PermissionDenied(DomainError):
    status = 403
    type = "forbidden"
    default_message = "没有权限"


class IPBlocked(PermissionDenied):
    type = "ip_blocked"
    default_message = "您的 IP 已被禁止访问"


class RegistrationClosed(PermissionDenied):
    """``POST /api/auth/register`` while the ``registration_enabled`` setting is off."""

    type = "registration_closed"
    default_message = "本站暂不开放注册，请联系管理员"


class AccountDisabled(PermissionDenied):
    type = "account_disabled"
    default_message = "账号已被停用，请联系管理员"


class _RetryAfterError(DomainError):
    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = None if retry_after is None else max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryAfterError):
    status = 429
    type = "rate_limit_exceeded"
    default_message = "您超过当前使用限制，请稍后再试"

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["retry_after"] = self.retry_after or 60
        return body


class UpstreamUnavailable(_RetryAfterError):
    """``reason``: the last channel's reason code (services/reasons.py), which the chat page turns into
    words (overloaded, misconfigured, unreachable); the API body keeps the one generic message."""

    status = 503
    type = "upstream_error"
    default_message = "上游渠道暂时不可用，请稍后再试"

    def __init__(
        self, message: str | None = None, *, retry_after: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason


class LimiterUnavailable(_RetryAfterError):
    status = 503
    type = "service_unavailable"
    default_message = "限流服务暂时不可用，请稍后再试"


class StateUnavailable(_RetryAfterError):
    """A decision needs the settings, the block list or the channels, and they could not be read again
    within their period (the database is away): refused rather than decided on an old value."""

    status = 503
    type = "service_unavailable"
    default_message = "服务暂时无法读取最新配置，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: int | None = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class AuditUnavailable(_RetryAfterError):
    """The audit row of an admin action could not be written: the action is refused rather than left
    off the record (services/audit.py)."""

    status = 503
    type = "service_unavailable"
    default_message = "审计日志暂时无法写入，操作未完成，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: int | None = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class ShuttingDown(DomainError):
    """The instance is stopping: a new call is refused, and one still open when the grace ends is cut."""

    status = 503
    type = "server_shutdown"
    default_message = "服务正在重启，请稍后再试"
