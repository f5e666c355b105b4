"""Channels: admin CRUD with keys encrypted at rest, and the directory the chat path picks from."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Channel, ChannelCreate, ChannelPublic, ChannelUpdate, utcnow
from services.errors import InvalidInput, NotFound
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads
from services.security import KeyCipher, mask_key
from services.text import has_control_characters

log = logging.getLogger("pyaichat.channels")


def normalize_base_url(url: str) -> str:
    """``https://host/v1`` form: http(s) only, no credentials, query or fragment, no trailing slash."""
    candidate = url.strip().rstrip("/")
    try:
        parts = urlsplit(candidate)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise InvalidInput("Base URL 格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Base URL 必须以 http:// 或 https:// 开头，例如 https://api.openai.com/v1")
    if parts.username or parts.password:
        raise InvalidInput("Base URL 不能包含用户名或密码，请把密钥填在 API Key 中")
    if parts.query or parts.fragment:
        raise InvalidInput("Base URL 不能包含查询参数或片段")
    if port == 0 or not candidate.isprintable() or any(ch.isspace() for ch in candidate):
        raise InvalidInput("Base URL 格式不正确")
    return candidate


def normalize_api_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise InvalidInput("API Key 不能为空")
    if not key.isascii() or not key.isprintable() or " " in key:
        raise InvalidInput("API Key 只能包含可见的 ASCII 字符")
    return key


def _clean_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"{what}不能为空")
    if has_control_characters(value):
        raise InvalidInput(f"{what}不能包含控制字符")
    return value


def to_public(channel: Channel, cipher: KeyCipher) -> ChannelPublic:
    plain = cipher.decrypt(channel.api_key)
    assert channel.id is not None
    return ChannelPublic(
        id=channel.id,
        name=channel.name,
        base_url=channel.base_url,
        model_id=channel.model_id,
        rpm_limit=channel.rpm_limit,
        is_enabled=channel.is_enabled,
        api_key_masked=mask_key(plain),
        api_key_readable=plain is not None,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def list_channels(*, session: Session) -> list[Channel]:
    return list(session.exec(select(Channel).order_by(col(Channel.id))).all())


def get_channel(*, session: Session, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("渠道不存在")
    return channel


def create_channel(*, session: Session, data: ChannelCreate, cipher: KeyCipher) -> Channel:
    channel = Channel(
        name=_clean_text(data.name, "渠道名称"),
        base_url=normalize_base_url(data.base_url),
        api_key=cipher.encrypt(normalize_api_key(data.api_key)),
        model_id=_clean_text(data.model_id, "Model ID"),
        rpm_limit=data.rpm_limit,
        is_enabled=data.is_enabled,
    )
    session.add(channel)
    session.commit()
    session.refresh(channel)
    return channel


def update_channel(*, session: Session, channel_id: int, data: ChannelUpdate, cipher: KeyCipher) -> Channel:
    channel = get_channel(session=session, channel_id=channel_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name") is not None:
        channel.name = _clean_text(changes["name"], "渠道名称")
    if changes.get("base_url") is not None:
        channel.base_url = normalize_base_url(changes["base_url"])
    if changes.get("model_id") is not None:
        channel.model_id = _clean_text(changes["model_id"], "Model ID")
    if changes.get("rpm_limit") is not None:
        channel.rpm_limit = changes["rpm_limit"]
    if changes.get("is_enabled") is not None:
        channel.is_enabled = changes["is_enabled"]
    if changes.get("api_key"):  # absent or empty keeps the stored key
        channel.api_key = cipher.encrypt(normalize_api_key(changes["api_key"]))
    channel.updated_at = utcnow()
    session.add(channel)
    session.commit()
    session.refresh(channel)
    return channel


def delete_channel(*, session: Session, channel_id: int) -> None:
    channel = get_channel(session=session, channel_id=channel_id)
    session.delete(channel)
    session.commit()


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """What the chat path needs of an enabled channel, with its key decrypted (kept in memory only)."""

    id: int
    name: str
    base_url: str
    api_key: str
    model_id: str
    rpm_limit: int

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:  # never print the key
        return f"ChannelTarget(id={self.id}, name={self.name!r}, model_id={self.model_id!r})"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    name: str


class ChannelDirectory:
    """Enabled channels by model, cached for a moment and refreshed at once after a local change.

    Cached (services/refresh.py): reloaded at once after a change on any instance, and never used for
    a decision when older than its period. Channels of one model are offered in rotating order so they
    share the traffic.
    """

    def __init__(self, engine: Engine, cipher: KeyCipher, period: float = PERIOD_SECONDS) -> None:
        self._engine = engine
        self._cipher = cipher
        self.refresher = Refresher(self._load, "channels", period)
        self._by_model: dict[str, list[ChannelTarget]] = {}
        self._models: list[ModelInfo] = []
        self._rotation: dict[str, itertools.count[int]] = {}
        self._warned_unreadable: set[int] = set()

    def load(self) -> None:
        """The first load (at start, so that no reader on the event loop has to)."""
        self.refresher.load_first()

    # Changes made through the directory show at once, here and (announced) on every instance.
    def create(self, *, session: Session, data: ChannelCreate) -> Channel:
        result = create_channel(session=session, data=data, cipher=self._cipher)
        self.refresher.changed()  # only a change that was made is announced
        return result

    def update(self, *, session: Session, channel_id: int, data: ChannelUpdate) -> Channel:
        result = update_channel(session=session, channel_id=channel_id, data=data, cipher=self._cipher)
        self.refresher.changed()  # only a change that was made is announced
        return result

    def delete(self, *, session: Session, channel_id: int) -> None:
        delete_channel(session=session, channel_id=channel_id)
        self.refresher.changed()

    def _load(self) -> None:
        with Session(self._engine) as session:
            bounded_reads(session)
            rows = session.exec(
                select(Channel).where(col(Channel.is_enabled).is_(True)).order_by(col(Channel.id))
            ).all()
        by_model: dict[str, list[ChannelTarget]] = {}
        models: dict[str, ModelInfo] = {}
        for row in rows:
            assert row.id is not None
            plain = self._cipher.decrypt(row.api_key)
            if plain is None:
                if row.id not in self._warned_unreadable:
                    self._warned_unreadable.add(row.id)
                    log.error(
                        "channel %s (%s): its API key cannot be decrypted with ENCRYPTION_KEY; skipped",
                        row.id,
                        row.name,
                    )
                continue
            target = ChannelTarget(row.id, row.name, row.base_url, plain, row.model_id, row.rpm_limit)
            by_model.setdefault(row.model_id, []).append(target)
            models.setdefault(row.model_id, ModelInfo(row.model_id, row.name))
        self._by_model = by_model
        self._models = list(models.values())

    def _fresh(self) -> None:
        self.refresher.ensure()

    def models(self) -> list[ModelInfo]:
        self._fresh()
        return list(self._models)

    def has_model(self, model_id: str) -> bool:
        self._fresh()
        return model_id in self._by_model

    def candidates(self, model_id: str) -> list[ChannelTarget]:
        """The model's channels, starting with the next one in rotation."""
        self._fresh()
        channels = self._by_model.get(model_id, [])
        if len(channels) <= 1:
            return list(channels)
        start = next(self._rotation.setdefault(model_id, itertools.count())) % len(channels)
        return channels[start:] + channels[:start]
