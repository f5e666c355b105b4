"""Channels: admin CRUD with keys encrypted at rest, and the directory the chat path picks from."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import (
    Channel,
    ChannelCreate,
    ChannelListItem,
    ChannelPublic,
    ChannelStatus,
    ChannelUpdate,
    ChatLog,
    utcnow,
)
from services import audit
from services.audit import Actor, Secret
from services.channel_fields import (
    completions_url,
    dump_json,
    load_list,
    load_map,
    mask_header_value,
    normalize_base_url,
    normalize_model_map,
    normalize_proxy_url,
)
from services.errors import InvalidInput, NotFound, Word
from services.i18n import FALLBACK
from services.reasons import stored_in_words
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads
from services.security import KeyCipher, mask_key
from services.text import has_control_characters

log = logging.getLogger("pyaichat.channels")


def normalize_api_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise InvalidInput("errors.api_key_empty")
    if not key.isascii() or not key.isprintable() or " " in key:
        raise InvalidInput("errors.api_key_ascii")
    return key


def _clean_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput("errors.empty", what=Word(what))
    if has_control_characters(value):
        raise InvalidInput("errors.control_characters", what=Word(what))
    return value


def channel_models(channel: Channel) -> list[str]:
    """The channel's model ids (rows from before revision 0003 that were never backfilled: its model_id)."""
    return load_list(channel.models) or [channel.model_id]


def channel_status(channel: Channel) -> ChannelStatus:
    if not channel.is_enabled:
        return ChannelStatus.disabled
    return ChannelStatus.auto_paused if channel.auto_paused else ChannelStatus.enabled


def decrypt_headers(channel: Channel, cipher: KeyCipher) -> dict[str, str] | None:
    """The extra headers, or None when they cannot be decrypted with ``ENCRYPTION_KEY``."""
    if not channel.headers:
        return {}
    plain = cipher.decrypt(channel.headers)
    if plain is None:
        return None
    try:
        value = json.loads(plain)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def decrypt_proxy(channel: Channel, cipher: KeyCipher) -> str | None:
    """None: the environment's proxy; ``""``: direct; else the URL. A token that cannot be decrypted
    raises, since calling without the proxy the admin set is not an option."""
    if channel.proxy is None:
        return None
    plain = cipher.decrypt(channel.proxy)
    if plain is None:
        raise ValueError("the proxy cannot be decrypted with ENCRYPTION_KEY")
    return plain


def to_public(channel: Channel, cipher: KeyCipher, language: str = FALLBACK) -> ChannelPublic:
    """The channel as the admin sees it: secrets masked, the last error in words in ``language``."""
    plain = cipher.decrypt(channel.api_key)
    headers = decrypt_headers(channel, cipher) or {}
    models = channel_models(channel)
    assert channel.id is not None
    return ChannelPublic(
        id=channel.id,
        name=channel.name,
        base_url=channel.base_url,
        call_url=completions_url(channel.base_url),
        model_id=models[0],
        models=models,
        model_map=load_map(channel.model_map),
        priority=channel.priority,
        weight=channel.weight,
        rpm_limit=channel.rpm_limit,
        is_enabled=channel.is_enabled,
        api_key_masked=mask_key(plain, language),
        api_key_readable=plain is not None,
        headers={name: mask_header_value(value) for name, value in headers.items()},
        proxy_set=channel.proxy is not None,
        proxy_direct=channel.proxy is not None and cipher.decrypt(channel.proxy) == "",
        auto_pause_after=channel.auto_pause_after,
        status=channel_status(channel),
        last_error=stored_in_words(channel.last_error, language),
        last_error_at=channel.last_error_at,
        last_success_at=channel.last_success_at,
        consecutive_failures=channel.consecutive_failures,
        latency_ms=channel.latency_ms,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def audit_view(channel: Channel, cipher: KeyCipher) -> dict[str, Any]:
    """What the audit log compares before and after a change: the admin's fields, with the API key, the
    proxy and each header value only as :class:`Secret` (a header's name is no secret; its value is).
    A token that cannot be decrypted is compared as the token: rewriting it counts as a change."""
    view: dict[str, Any] = {
        "name": channel.name,
        "base_url": channel.base_url,
        "models": channel_models(channel),
        "model_map": load_map(channel.model_map),
        "priority": channel.priority,
        "weight": channel.weight,
        "rpm_limit": channel.rpm_limit,
        "is_enabled": channel.is_enabled,
        "auto_paused": channel.auto_paused,
        "auto_pause_after": channel.auto_pause_after,
    }
    key = cipher.decrypt(channel.api_key)
    view["api_key"] = Secret.of(key if key is not None else f"\0token:{channel.api_key}")
    if channel.proxy is not None:
        proxy = cipher.decrypt(channel.proxy)
        view["proxy"] = Secret.of(proxy if proxy is not None else f"\0token:{channel.proxy}")
    for name, value in (decrypt_headers(channel, cipher) or {}).items():
        view[f"headers.{name}"] = Secret.of(value)
    return view


def list_channels(*, session: Session) -> list[Channel]:
    return list(session.exec(select(Channel).order_by(col(Channel.id))).all())


# ---- the admin's paged list: search, filter, sort --------------------------------------------------------

MAX_PAGE_SIZE = 200
MAX_PAGE = 10_000_000  # far past any real list; beyond it an offset means nothing (and could overflow)
MAX_QUERY_CHARS = 200
# a sort key is a column name, ``-`` in front for descending; ``status`` orders enabled, auto_paused, disabled
CHANNEL_SORTS: dict[str, Any] = {
    "id": col(Channel.id),
    "name": col(Channel.name),
    "priority": col(Channel.priority),
    "weight": col(Channel.weight),
    "rpm_limit": col(Channel.rpm_limit),
    "latency_ms": col(Channel.latency_ms),
    "consecutive_failures": col(Channel.consecutive_failures),
    "last_success_at": col(Channel.last_success_at),
    "last_error_at": col(Channel.last_error_at),
    "created_at": col(Channel.created_at),
    "updated_at": col(Channel.updated_at),
    "status": None,  # derived from is_enabled and auto_paused
}


@dataclass(frozen=True)
class ChannelQuery:
    """A validated request for one page of channels."""

    page: int = 1
    page_size: int = 20
    q: str | None = None  # a part of the name, of a model id or of the base URL (e.g. its host)
    status: ChannelStatus | None = None
    sort: str = "id"


def channel_query(
    *, page: int = 1, page_size: int = 20, q: str | None = None, status: str | None = None, sort: str = "id"
) -> ChannelQuery:
    """Check the list parameters; raises InvalidInput (422) naming the parameter."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("errors.page_range", high=MAX_PAGE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("errors.page_size_range", high=MAX_PAGE_SIZE)
    text = (q or "").strip() or None
    if text is not None and (len(text) > MAX_QUERY_CHARS or has_control_characters(text)):
        raise InvalidInput("errors.channel_q", count=MAX_QUERY_CHARS)
    if status is not None and status not in ChannelStatus.__members__:
        raise InvalidInput("errors.status_one_of", choices=", ".join(ChannelStatus.__members__))
    if sort.removeprefix("-") not in CHANNEL_SORTS:
        raise InvalidInput("errors.sort_one_of_desc", choices=", ".join(CHANNEL_SORTS))
    return ChannelQuery(page, page_size, text, ChannelStatus(status) if status else None, sort)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Any, request: ChannelQuery) -> Any:
    if request.q is not None:
        pattern = _like(request.q)
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (
                        col(Channel.name),
                        col(Channel.models),
                        col(Channel.model_id),
                        col(Channel.base_url),
                    )
                )
            )
        )
    if request.status is ChannelStatus.disabled:
        query = query.where(col(Channel.is_enabled).is_(False))
    elif request.status is ChannelStatus.auto_paused:
        query = query.where(col(Channel.is_enabled).is_(True), col(Channel.auto_paused).is_(True))
    elif request.status is ChannelStatus.enabled:
        query = query.where(col(Channel.is_enabled).is_(True), col(Channel.auto_paused).is_(False))
    return query


def _order(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key == "status":  # enabled, auto_paused, disabled (or the reverse)
        rank = case((col(Channel.is_enabled).is_(False), 2), (col(Channel.auto_paused).is_(True), 1), else_=0)
        columns = [rank]
    else:
        columns = [CHANNEL_SORTS[key]]
    ident = col(Channel.id)
    if descending:
        return [*(c.desc() for c in columns), ident.desc()]
    return [*(c.asc() for c in columns), ident.asc()]


@dataclass(frozen=True)
class ChannelPage:
    items: list[Channel]
    total: int
    page: int
    page_size: int


def page_channels(*, session: Session, request: ChannelQuery) -> ChannelPage:
    """One page of channels matching the search and status, in the asked order (id breaks ties)."""
    total = session.exec(_filtered(select(func.count()).select_from(Channel), request)).one()
    query = (
        _filtered(select(Channel), request)
        .order_by(*_order(request.sort))
        .offset((request.page - 1) * request.page_size)
        .limit(request.page_size)
    )
    return ChannelPage(list(session.exec(query).all()), total, request.page, request.page_size)


def calls_today(*, session: Session, channel_ids: list[int], since: datetime) -> dict[int, int]:
    """Call-log rows per channel since ``since`` (the local midnight), for the channels of one page."""
    if not channel_ids:
        return {}
    query = (
        select(ChatLog.channel_id, func.count())
        .where(col(ChatLog.created_at) >= since, col(ChatLog.channel_id).in_(channel_ids))
        .group_by(col(ChatLog.channel_id))
    )
    return {int(channel_id): int(count) for channel_id, count in session.exec(query).all() if channel_id}


def list_page(
    *,
    session: Session,
    request: ChannelQuery,
    cipher: KeyCipher,
    zone: ZoneInfo,
    now: datetime | None = None,
    language: str = FALLBACK,
) -> tuple[list[ChannelListItem], int]:
    """One page as the admin sees it (keys masked, calls today, words in ``language``) and the number of
    matching channels."""
    found = page_channels(session=session, request=request)
    local = (now or datetime.now(UTC)).astimezone(zone)
    midnight = datetime.combine(local.date(), time.min, tzinfo=zone)
    ids = [row.id for row in found.items if row.id is not None]
    calls = calls_today(session=session, channel_ids=ids, since=midnight)
    items = [
        ChannelListItem(
            **to_public(row, cipher, language).model_dump(), calls_today=calls.get(row.id or 0, 0)
        )
        for row in found.items
    ]
    return items, found.total


def channel_names(*, session: Session) -> dict[int, str]:
    """Every channel's id and name (for pickers: no key is read or decrypted)."""
    query = select(Channel.id, Channel.name).order_by(col(Channel.id))
    return {int(ident): name for ident, name in session.exec(query).all() if ident is not None}


def get_channel(*, session: Session, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("errors.channel_not_found")
    return channel


def _set_models(channel: Channel, models: list[str], model_map: Mapping[str, str]) -> None:
    channel.models = dump_json(models)
    channel.model_id = models[0]
    channel.model_map = dump_json(dict(model_map))


def _encrypt_headers(headers: Mapping[str, str], cipher: KeyCipher) -> str | None:
    return cipher.encrypt(dump_json(dict(headers))) if headers else None


def create_channel(
    *, session: Session, data: ChannelCreate, cipher: KeyCipher, actor: Actor | None = None
) -> Channel:
    """``actor``: the admin, whose ``channel.create`` row is committed with the channel."""
    assert data.models is not None  # ChannelCreate resolves model_id into models
    channel = Channel(
        name=_clean_text(data.name, "errors.what.channel_name"),
        base_url=normalize_base_url(data.base_url),
        api_key=cipher.encrypt(normalize_api_key(data.api_key)),
        model_id=data.models[0],
        rpm_limit=data.rpm_limit,
        is_enabled=data.is_enabled,
        priority=data.priority,
        weight=data.weight,
        headers=_encrypt_headers(data.headers, cipher),
        proxy=None if data.proxy is None else cipher.encrypt(normalize_proxy_url(data.proxy)),
        auto_pause_after=data.auto_pause_after,
    )
    _set_models(channel, data.models, data.model_map)
    session.add(channel)
    if actor is not None:
        session.flush()  # the id, for the audit row's target
        target = audit.channel_target(channel.id, channel.name)
        # what was set: not the health (auto_paused starts false) nor an empty mapping
        created = {k: v for k, v in audit_view(channel, cipher).items() if k != "auto_paused" and v != {}}
        audit.add(
            session,
            actor,
            "channel.create",
            target=target,
            changes=audit.diff({}, created),
        )
    session.commit()
    session.refresh(channel)
    return channel


def _merged_headers(channel: Channel, given: dict[str, str | None], cipher: KeyCipher) -> str | None:
    """The new headers: a name sent as null keeps its stored value (values are write-only)."""
    stored = decrypt_headers(channel, cipher)
    merged: dict[str, str] = {}
    for name, value in given.items():
        if value is None:
            kept = {k.lower(): v for k, v in (stored or {}).items()}.get(name.lower())
            if kept is None:
                raise InvalidInput("errors.header_unsaved", name=name)
            value = kept
        merged[name] = value
    return _encrypt_headers(merged, cipher)


def update_channel(
    *, session: Session, channel_id: int, data: ChannelUpdate, cipher: KeyCipher, actor: Actor | None = None
) -> Channel:
    """Every rule is checked before anything is assigned, so a refused update changes nothing.
    ``actor``: the admin, whose ``channel.update`` row (when a field changed) is committed with it."""
    channel = get_channel(session=session, channel_id=channel_id)
    changes = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        values["name"] = _clean_text(changes["name"], "errors.what.channel_name")
    if changes.get("base_url") is not None:
        values["base_url"] = normalize_base_url(changes["base_url"])
    stored_models = channel_models(channel)
    models = data.resolved_models()
    if data.models is None and models == [stored_models[0]]:
        models = None  # the shorthand naming the current first model: the list stays
    if models is not None or data.model_map is not None:
        models = models or stored_models
        if data.model_map is not None:
            model_map = normalize_model_map(data.model_map, models)
        else:  # the stored mapping, less the models no longer served
            model_map = {k: v for k, v in load_map(channel.model_map).items() if k in models}
        values["models"] = (models, model_map)
    if changes.get("api_key"):  # absent or empty keeps the stored key
        values["api_key"] = cipher.encrypt(normalize_api_key(changes["api_key"]))
    if data.headers is not None:
        values["headers"] = _merged_headers(channel, data.headers, cipher)
    if "proxy" in changes:
        proxy = changes["proxy"]
        values["proxy"] = None if proxy is None else cipher.encrypt(normalize_proxy_url(proxy))
    for name in ("rpm_limit", "priority", "weight", "is_enabled"):
        if changes.get(name) is not None:
            values[name] = changes[name]
    if "auto_pause_after" in changes:
        values["auto_pause_after"] = changes["auto_pause_after"]
    # the checks passed: assign
    before = audit_view(channel, cipher) if actor is not None else {}
    if "models" in values:
        _set_models(channel, *values.pop("models"))
    if values.get("is_enabled") is True:  # enabling by hand also resumes an auto-paused channel
        channel.auto_paused = False
        channel.consecutive_failures = 0
    for name, value in values.items():
        setattr(channel, name, value)
    channel.updated_at = utcnow()
    session.add(channel)
    if actor is not None and (changed := audit.diff(before, audit_view(channel, cipher))):
        target = audit.channel_target(channel.id, channel.name)
        audit.add(session, actor, "channel.update", target=target, changes=changed)
    session.commit()
    session.refresh(channel)
    return channel


def resume_channel(*, session: Session, channel_id: int, actor: Actor | None = None) -> Channel:
    """The admin's "resume": an auto-paused channel serves again at once (``channel.resume`` in the
    audit log, committed with it)."""
    channel = get_channel(session=session, channel_id=channel_id)
    if actor is not None:
        changes = {"auto_paused": {"old": channel.auto_paused, "new": False}} if channel.auto_paused else {}
        target = audit.channel_target(channel.id, channel.name)
        audit.add(session, actor, "channel.resume", target=target, changes=changes)
    channel.auto_paused = False
    channel.consecutive_failures = 0
    channel.updated_at = utcnow()
    session.add(channel)
    session.commit()
    session.refresh(channel)
    return channel


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


def delete_channel(
    *, session: Session, channel_id: int, cipher: KeyCipher | None = None, actor: Actor | None = None
) -> None:
    """``actor`` (with ``cipher``): the admin, whose ``channel.delete`` row, with the channel's fields as
    they were, is committed with the deletion."""
    channel = get_channel(session=session, channel_id=channel_id)
    if actor is not None:
        before = audit_view(channel, cipher) if cipher is not None else {"name": channel.name}
        target = audit.channel_target(channel.id, channel.name)
        audit.add(session, actor, "channel.delete", target=target, changes=audit.diff(before, {}))
    session.delete(channel)
    session.commit()


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
