"""System settings kept in ``system_config``: seeded from the environment, then the admin's values win."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import SystemConfig, utcnow
from services import audit
from services.audit import Actor
from services.errors import InvalidInput
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads

DESCRIPTIONS = {
    "guest_rpm": "未登录用户每分钟请求数上限（按 IP）",
    "user_rpm": "已登录用户每分钟请求数上限（按用户）",
    "log_retention_days": "调用日志保留天数",
    "register_per_ip_per_hour": "每个 IP 每小时可注册的账号数",
    "auto_pause_after": "渠道连续失败多少次后自动暂停（0 表示从不；渠道可单独设置）",
    "guest_enabled": "是否允许未登录的访客使用（true / false）",
    "registration_enabled": "是否开放注册（true / false；关闭后管理员仍可创建用户）",
}
SWITCHES = frozenset({"guest_enabled", "registration_enabled"})  # on/off settings, stored as true / false
MAX_VALUES = {
    "guest_rpm": 1_000_000,
    "user_rpm": 1_000_000,
    "log_retention_days": 36_500,
    "register_per_ip_per_hour": 1_000_000,
    "auto_pause_after": 10_000,
}
MIN_VALUES = {"auto_pause_after": 0}  # 0: never; every other setting is at least 1


@dataclass(frozen=True)
class SystemSettings:
    guest_rpm: int
    user_rpm: int
    log_retention_days: int
    register_per_ip_per_hour: int = 5
    auto_pause_after: int = 5
    guest_enabled: bool = True
    registration_enabled: bool = True


SettingValue = int | bool


def _validated(key: str, value: SettingValue) -> SettingValue:
    if key in SWITCHES:
        if not isinstance(value, bool):
            raise InvalidInput("errors.setting_bool", key=key)
        return value
    low = MIN_VALUES.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_VALUES[key]:
        raise InvalidInput("errors.setting_range", key=key, low=low, high=MAX_VALUES[key])
    return value


def seed_settings(*, session: Session, defaults: SystemSettings) -> None:
    """Insert the settings that are missing; existing values (the admin's) are left alone."""
    existing = set(session.exec(select(SystemConfig.key)).all())
    for key, description in DESCRIPTIONS.items():
        if key not in existing:
            value = _validated(key, getattr(defaults, key))
            session.add(SystemConfig(key=key, value=_stored(value), description=description))
    session.commit()


def _stored(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parsed(key: str, text: str) -> SettingValue:
    """A stored value; raises ValueError or InvalidInput when it is not one (the default is used then)."""
    if key in SWITCHES:
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    return _validated(key, int(text))


def read_settings(*, session: Session, defaults: SystemSettings) -> SystemSettings:
    rows = {row.key: row.value for row in session.exec(select(SystemConfig)).all()}
    values: dict[str, SettingValue] = {}
    for key in DESCRIPTIONS:
        try:
            values[key] = _parsed(key, rows[key])
        except (KeyError, ValueError, InvalidInput):
            values[key] = getattr(defaults, key)
    return SystemSettings(**values)  # type: ignore[arg-type]  # each key has its kind (checked above)


def update_settings(
    *,
    session: Session,
    changes: dict[str, SettingValue],
    defaults: SystemSettings,
    actor: Actor | None = None,
) -> SystemSettings:
    """``actor``: the admin, whose ``settings.update`` row (when a value changed) is committed with it."""
    unknown = set(changes) - set(DESCRIPTIONS)
    if unknown:
        raise InvalidInput("errors.setting_unknown", keys=", ".join(sorted(unknown)))
    checked = {key: _validated(key, value) for key, value in changes.items()}
    if actor is not None:
        before = vars(read_settings(session=session, defaults=defaults))
        diff = audit.diff({key: before[key] for key in checked}, checked)
        if diff:
            audit.add(session, actor, "settings.update", target=audit.SETTINGS_TARGET, changes=diff)
    rows = {row.key: row for row in session.exec(select(SystemConfig)).all()}
    for key, value in checked.items():
        row = rows.get(key) or SystemConfig(key=key, value="", description=DESCRIPTIONS[key])
        row.value = _stored(value)
        row.updated_at = utcnow()
        session.add(row)
    session.commit()
    return read_settings(session=session, defaults=defaults)


class SettingsStore:
    """The current system settings, cached (services/refresh.py): reloaded at once after a change on
    any instance, and never used for a decision when older than their period."""

    def __init__(self, engine: Engine, defaults: SystemSettings, period: float = PERIOD_SECONDS) -> None:
        self._engine = engine
        self.defaults = defaults
        self._current = defaults
        self.refresher = Refresher(self._load, "settings", period)

    def load(self) -> None:
        """The first load (at start, so that no reader on the event loop has to)."""
        self.refresher.load_first()

    def update(
        self, *, session: Session, changes: dict[str, SettingValue], actor: Actor | None
    ) -> SystemSettings:
        """Store ``changes``, in effect at once here and (announced) on every instance; ``actor``: the
        admin (audited in the same transaction), None only for changes that are no admin's."""
        result = update_settings(session=session, changes=changes, defaults=self.defaults, actor=actor)
        self.refresher.changed()  # only a change that was made is announced
        return result

    def _load(self) -> None:
        with Session(self._engine) as session:
            bounded_reads(session)
            self._current = read_settings(session=session, defaults=self.defaults)

    def current(self) -> SystemSettings:
        """For reads that decide nothing (the settings page, the retention job's daily run)."""
        self.refresher.ensure()
        return self._current

    async def for_decision(self) -> SystemSettings:
        """For a limit decision: never older than the period (waits for a reload, else 503)."""
        await self.refresher.until_fresh()
        return self._current
