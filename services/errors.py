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

A message is a key of the i18n catalogue (``services/locales/errors.py``; its ``{fields}`` given as
keywords): ``InvalidInput("errors.page_range", high=100)``. The API answers in the language of the
request's ``Accept-Language`` (``body(language)``), a page in the visitor's (``text(language)``);
``message`` is the fallback language's (Chinese) text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from services.i18n import FALLBACK, catalogue, translate


class Word(str):
    """A field of a message that is itself a catalogue key (``InvalidInput("errors.empty", what=Word(…))``):
    shown in the message's language too."""


class DomainError(Exception):
    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad_request"
    default_key: ClassVar[str] = "errors.bad_request"

    def __init__(self, message: str | None = None, /, **fields: object) -> None:
        """``message``: a catalogue key (default: the class's own), else a fixed text shown as it is."""
        text = message or self.default_key
        self.key: str | None = text if text in catalogue() else None
        self.fields = fields
        self.message = text
        self.message = self.text(FALLBACK)
        super().__init__(self.message)

    def text(self, language: str = FALLBACK) -> str:
        """The message in ``language`` (the fallback's for a language we do not have)."""
        if self.key is None:
            return self.message
        words = catalogue()
        fields = {
            name: translate(value, language) if isinstance(value, Word) and value in words else value
            for name, value in self.fields.items()
        }
        return translate(self.key, language, **fields)

    def body(self, language: str = FALLBACK) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.text(language)}}

    def headers(self) -> dict[str, str]:
        return {}


class ImagesNotSupported(DomainError):
    status = 400
    type = "images_not_supported"
    default_key = "errors.images_not_supported"


class InputRule(ValueError):
    """A pydantic validator's refusal that keeps its InvalidInput, so that the 422 body can give its
    message in the request's language."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


class InvalidInput(DomainError):
    status = 422
    type = "validation_error"
    default_key = "errors.invalid_input"


class NotFound(DomainError):
    status = 404
    type = "not_found"
    default_key = "errors.not_found"


class ModelNotFound(NotFound):
    type = "model_not_found"
    default_key = "errors.model_not_found"


class PayloadTooLarge(DomainError):
    status = 413
    type = "payload_too_large"
    default_key = "errors.payload_too_large"


class Conflict(DomainError):
    status = 409
    type = "conflict"
    default_key = "errors.conflict"


class AuthenticationFailed(DomainError):
    status = 401
    type = "unauthorized"
    default_key = "errors.authentication_failed"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class AuthenticationRequired(AuthenticationFailed):
    """A guest (no token) while the ``guest_enabled`` setting is off."""

    type = "authentication_required"
    default_key = "errors.authentication_required"


class InvalidApiKey(AuthenticationFailed):
    """One answer for a revoked, expired, malformed or unknown key: no hint which."""

    type = "invalid_api_key"
    default_key = "errors.invalid_api_key"


class AccountDisabledCredential(AuthenticationFailed):
    type = "account_disabled"
    default_key = "errors.account_disabled_credential"


class PermissionDenied(DomainError):
    status = 403
    type = "forbidden"
    default_key = "errors.permission_denied"


class IPBlocked(PermissionDenied):
    type = "ip_blocked"
    default_key = "errors.ip_blocked"


class RegistrationClosed(PermissionDenied):
    """``POST /api/auth/register`` while the ``registration_enabled`` setting is off."""

    type = "registration_closed"
    default_key = "errors.registration_closed"


class AccountDisabled(PermissionDenied):
    type = "account_disabled"
    default_key = "errors.account_disabled"


class _RetryAfterError(DomainError):
    def __init__(
        self, message: str | None = None, /, *, retry_after: int | None = None, **fields: object
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after = None if retry_after is None else max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryAfterError):
    status = 429
    type = "rate_limit_exceeded"
    default_key = "errors.rate_limited"

    def body(self, language: str = FALLBACK) -> dict[str, Any]:
        body = super().body(language)
        body["error"]["retry_after"] = self.retry_after or 60
        return body


class UpstreamUnavailable(_RetryAfterError):
    """``reason``: the last channel's reason code (services/reasons.py), which the chat page turns into
    words (overloaded, misconfigured, unreachable); the API body keeps the one generic message."""

    status = 503
    type = "upstream_error"
    default_key = "errors.upstream_unavailable"

    def __init__(
        self, message: str | None = None, *, retry_after: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason


class LimiterUnavailable(_RetryAfterError):
    status = 503
    type = "service_unavailable"
    default_key = "errors.limiter_unavailable"


class StateUnavailable(_RetryAfterError):
    """A decision needs the settings, the block list or the channels, and they could not be read again
    within their period (the database is away): refused rather than decided on an old value."""

    status = 503
    type = "service_unavailable"
    default_key = "errors.state_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int | None = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class AuditUnavailable(_RetryAfterError):
    """The audit row of an admin action could not be written: the action is refused rather than left
    off the record (services/audit.py)."""

    status = 503
    type = "service_unavailable"
    default_key = "errors.audit_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int | None = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class ShuttingDown(DomainError):
    """The instance is stopping: a new call is refused, and one still open when the grace ends is cut."""

    status = 503
    type = "server_shutdown"
    default_key = "errors.shutting_down"
