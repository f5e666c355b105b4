"""The directory the chat path picks from: the enabled channels by public model name, their secrets
decrypted (in memory only), cached and refreshed at once after a change, in the order to try them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Channel, ChannelCreate, ChannelUpdate
from services.audit import Actor
from services.channel_fields import completions_url, load_map
from services.channels import (
    channel_models,
    create_channel,
    decrypt_headers,
    decrypt_proxy,
    delete_channel,
    resume_channel,
    update_channel,
)
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads
from services.security import KeyCipher

log = logging.getLogger("pyaichat.channels")


def mark_stream_options_unsupported(*, engine: Engine, channel_id: int) -> bool:
    """Remember that the channel's upstream refuses ``stream_options``: later streams leave it out.
    True when this changed the row."""
    with Session(engine) as session:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.stream_options_unsupported:
            return False
        channel.stream_options_unsupported = True
        session.add(channel)
        session.commit()
        return True


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """What the chat path needs of an enabled channel for one public model name, with its secrets
    decrypted (kept in memory only). ``model_id`` is the upstream's id to send (mapped)."""

    id: int
    name: str
    base_url: str
    api_key: str
    model_id: str
    rpm_limit: int
    call_url: str = ""
    priority: int = 0
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    proxy: str | None = None  # None: the environment's; "": direct
    auto_pause_after: int | None = None
    stream_options_unsupported: bool = False  # the upstream refuses ``stream_options``: never sent

    @property
    def completions_url(self) -> str:
        return self.call_url or completions_url(self.base_url)

    def __repr__(self) -> str:  # never print the key, the headers or the proxy
        return f"ChannelTarget(id={self.id}, name={self.name!r}, model_id={self.model_id!r})"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # the public name
    name: str  # what a picker shows: the public name too, never a channel's name


def order_by_priority(
    channels: list[ChannelTarget], turns: dict[tuple[int, int], int]
) -> list[ChannelTarget]:
    """Higher priority first; within a priority, a smooth weighted round robin (nginx's) picks who goes
    first, so channels of weights 3 and 1 lead three calls in four, and equal weights take turns. The
    others follow, heavier first. ``turns`` holds the running scores (channel id, priority) → score."""
    ordered: list[ChannelTarget] = []
    for priority in sorted({c.priority for c in channels}, reverse=True):
        group = [c for c in channels if c.priority == priority]
        if len(group) > 1:
            total = sum(c.weight for c in group)
            for c in group:
                turns[(c.id, priority)] = turns.get((c.id, priority), 0) + c.weight
            first = max(group, key=lambda c: turns[(c.id, priority)])
            turns[(first.id, priority)] -= total
            group.remove(first)
            group = [first, *sorted(group, key=lambda c: -c.weight)]
        ordered += group
    return ordered


class ChannelDirectory:
    """Enabled channels by public model name, cached for a moment and refreshed at once after a change.

    Cached (services/refresh.py): reloaded at once after a change on any instance, and never used for
    a decision when older than its period. Auto-paused channels serve nothing until they resume.
    """

    def __init__(self, engine: Engine, cipher: KeyCipher, period: float = PERIOD_SECONDS) -> None:
        self._engine = engine
        self._cipher = cipher
        self.refresher = Refresher(self._load, "channels", period)
        self._by_model: dict[str, list[ChannelTarget]] = {}
        self._models: list[ModelInfo] = []
        self._paused_models: frozenset[str] = frozenset()  # served only by auto-paused channels
        self._turns: dict[str, dict[tuple[int, int], int]] = {}
        self._warned_unreadable: set[int] = set()

    def load(self) -> None:
        """The first load (at start, so that no reader on the event loop has to)."""
        self.refresher.load_first()

    # Changes made through the directory show at once, here and (announced) on every instance.
    # ``actor``: the admin making the change (its audit row is committed with it); None only for changes
    # that are no admin's (set-ups in tests).
    def create(self, *, session: Session, data: ChannelCreate, actor: Actor | None) -> Channel:
        result = create_channel(session=session, data=data, cipher=self._cipher, actor=actor)
        self.refresher.changed()  # only a change that was made is announced
        return result

    def update(
        self, *, session: Session, channel_id: int, data: ChannelUpdate, actor: Actor | None
    ) -> Channel:
        result = update_channel(
            session=session, channel_id=channel_id, data=data, cipher=self._cipher, actor=actor
        )
        self.refresher.changed()  # only a change that was made is announced
        return result

    def delete(self, *, session: Session, channel_id: int, actor: Actor | None) -> None:
        delete_channel(session=session, channel_id=channel_id, cipher=self._cipher, actor=actor)
        self.refresher.changed()

    def resume(self, *, session: Session, channel_id: int, actor: Actor | None) -> Channel:
        channel = resume_channel(session=session, channel_id=channel_id, actor=actor)
        self.refresher.changed()
        return channel

    def _unreadable(self, row: Channel, what: str) -> None:
        assert row.id is not None
        if row.id not in self._warned_unreadable:
            self._warned_unreadable.add(row.id)
            log.error(
                "channel %s (%s): its %s cannot be decrypted with ENCRYPTION_KEY; skipped",
                row.id,
                row.name,
                what,
            )

    def remember_stream_options_unsupported(self, channel_id: int) -> None:
        """Blocking (a database write): run it off the event loop."""
        if mark_stream_options_unsupported(engine=self._engine, channel_id=channel_id):
            self.refresher.changed()

    def _load(self) -> None:
        with Session(self._engine) as session:
            bounded_reads(session)
            rows = session.exec(
                select(Channel).where(col(Channel.is_enabled).is_(True)).order_by(col(Channel.id))
            ).all()
        by_model: dict[str, list[ChannelTarget]] = {}
        paused: set[str] = set()
        for row in rows:
            assert row.id is not None
            if row.auto_paused:
                paused.update(channel_models(row))
                continue
            plain = self._cipher.decrypt(row.api_key)
            headers = decrypt_headers(row, self._cipher)
            try:
                proxy = decrypt_proxy(row, self._cipher)
            except ValueError:
                self._unreadable(row, "proxy")
                continue
            if plain is None or headers is None:
                self._unreadable(row, "API key" if plain is None else "headers")
                continue
            model_map = load_map(row.model_map)
            url = completions_url(row.base_url)
            for public in channel_models(row):
                target = ChannelTarget(
                    id=row.id,
                    name=row.name,
                    base_url=row.base_url,
                    api_key=plain,
                    model_id=model_map.get(public, public),
                    rpm_limit=row.rpm_limit,
                    call_url=url,
                    priority=row.priority,
                    weight=max(row.weight, 1),
                    headers=headers,
                    proxy=proxy,
                    auto_pause_after=row.auto_pause_after,
                    stream_options_unsupported=bool(row.stream_options_unsupported),
                )
                by_model.setdefault(public, []).append(target)
        self._by_model = by_model
        self._models = [ModelInfo(name, name) for name in by_model]
        self._paused_models = frozenset(paused.difference(by_model))

    def _fresh(self) -> None:
        self.refresher.ensure()

    def models(self) -> list[ModelInfo]:
        self._fresh()
        return list(self._models)

    def has_model(self, model_id: str) -> bool:
        self._fresh()
        return model_id in self._by_model

    def is_paused(self, model_id: str) -> bool:
        """Whether every enabled channel serving ``model_id`` is auto-paused (the model is busy, not
        unknown; it is not listed meanwhile)."""
        self._fresh()
        return model_id in self._paused_models

    def candidates(self, model_id: str) -> list[ChannelTarget]:
        """The channels serving the public name ``model_id``, in the order to try them."""
        self._fresh()
        channels = self._by_model.get(model_id, [])
        if len(channels) <= 1:
            return list(channels)
        return order_by_priority(list(channels), self._turns.setdefault(model_id, {}))
