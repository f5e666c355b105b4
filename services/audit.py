"""The admin audit log (``audit_logs``): one row per admin change or admin-console sign-in.

Who calls it and how:

- A change made in a service function adds its row with :func:`add` before that function's commit, so
  the change and its row are one transaction: a row that cannot be written fails the change with it.
- What has no transaction of its own to join (a sign-in, which only reads) uses :func:`record`, which
  commits the row alone and, when it cannot, logs the failure at ERROR and raises
  :class:`AuditUnavailable`. Nothing is ever dropped silently.
- The doors pass an :class:`Actor` (the admin's name and the client IP): ``AdminActor`` in
  ``app/api/deps.py`` for routes, ``page_actor`` in ``pages/admin/frame.py`` for the admin pages.

A new admin change, e.g. disabling a user, takes ``actor: Actor | None`` and before its commit::

    before = {"disabled": user.disabled, "rpm_limit": user.rpm_limit}
    ...  # the change
    changes = audit.diff(before, {"disabled": user.disabled, "rpm_limit": user.rpm_limit})
    audit.add(session, actor, "user.update", target=audit.user_target(user.id, user.email), changes=changes)
    session.commit()

(a password reset: ``changes={"password": Secret.of(new)}`` or simply ``{"password": "changed"}``).

``changes`` is a JSON object built by :func:`diff` from two views of the thing changed: a plain field
as ``{"old": …, "new": …}``; a secret (an API key, a proxy URL, a header value, a password) is held in
the view only as :class:`Secret`, a digest, and written as one word — ``"set"``, ``"changed"`` or
``"removed"`` — so its value cannot reach the table, whatever the caller does.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import AuditLog
from services.errors import AuditUnavailable

log = logging.getLogger("pyaichat.audit")

# Stable action names (the API's ``action`` filter and the page's select; their words live in the
# catalogue under ``admin.audit.action.<name>`` and ``admin.audit.group.<group>``). A group is the part
# before the dot; ``action=channel`` filters the whole group.
ACTIONS: tuple[str, ...] = (
    "channel.create",
    "channel.update",
    "channel.delete",
    "channel.resume",
    "settings.update",
    "ip_rule.create",
    "ip_rule.delete",
    "admin.login",
    "admin.login_failed",
    "user.create",
    "user.update",
    "user.password_reset",
    "user.delete",
    "key.revoke",
    "model.update",
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(action.split(".")[0] for action in ACTIONS))
SECRET_WORDS = ("set", "changed", "removed")
MAX_ADMIN_CHARS = 64
MAX_IP_CHARS = 64
MAX_TARGET_CHARS = 300


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the admin's name (for a failed sign-in, the name tried) and the client IP."""

    admin: str
    ip_address: str


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret in a before/after view: only its digest, enough to tell whether it changed."""

    digest: str

    @classmethod
    def of(cls, value: str) -> Secret:
        return cls(hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest())

    def __repr__(self) -> str:
        return "Secret(…)"


_ABSENT = object()


def _empty(value: Any) -> bool:
    return value is _ABSENT or value is None


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that differ between two views, in the order they appear (``before``'s first).

    A field missing from a view, or None, is "not there": creating a thing is a diff from ``{}``,
    deleting one a diff to ``{}``. Values are JSON-ready (str, int, bool, lists and objects of them)."""
    changes: dict[str, Any] = {}
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if (_empty(old) and _empty(new)) or old == new:
            continue
        if isinstance(old, Secret) or isinstance(new, Secret):
            changes[key] = "set" if _empty(old) else "removed" if _empty(new) else "changed"
        else:
            changes[key] = {"old": None if _empty(old) else old, "new": None if _empty(new) else new}
    return changes


def entry(
    actor: Actor, action: str, *, target: str | None = None, changes: Mapping[str, Any] | None = None
) -> AuditLog:
    """The row (not stored). Any :class:`Secret` left in ``changes`` is written as "changed"."""
    safe = {key: "changed" if isinstance(value, Secret) else value for key, value in (changes or {}).items()}
    return AuditLog(
        admin=actor.admin[:MAX_ADMIN_CHARS],
        ip_address=actor.ip_address[:MAX_IP_CHARS],
        action=action,
        target=None if target is None else target[:MAX_TARGET_CHARS],
        changes=json.dumps(safe, ensure_ascii=False, separators=(",", ":"), default=str),
    )


def add(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditLog:
    """Add the row to ``session``: it is stored by the caller's commit, with the change, or not at all."""
    row = entry(actor, action, target=target, changes=changes)
    session.add(row)
    return row


def record(
    engine: Engine,
    actor: Actor,
    action: str,
    *,
    target: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """Store the row in a transaction of its own (blocking: run it off the event loop). A failure is
    logged at ERROR, naming the action, and raised as :class:`AuditUnavailable`."""
    row = entry(actor, action, target=target, changes=changes)
    try:
        with Session(engine) as session:
            session.add(row)
            session.commit()
    except Exception as exc:
        log.error(
            "could not write the audit row %s by %r from %s (target %r): %s",
            action,
            row.admin,
            row.ip_address,
            row.target,
            type(exc).__name__,
        )
        raise AuditUnavailable() from exc


def channel_target(channel_id: int | None, name: str) -> str:
    return f"channel {channel_id} ({name})"


def ip_rule_target(rule_id: int | None, rule: str) -> str:
    return f"ip_rule {rule_id} ({rule})"


def user_target(user_id: int | None, email: str) -> str:
    return f"user {user_id} ({email})"


def key_target(key_id: int | None, name: str) -> str:
    return f"key {key_id} ({name})"


SETTINGS_TARGET = "system_config"
