"""Channels as the admin manages them: create, update, resume and delete (each with its audit row), keys,
headers and proxy encrypted at rest, and the views of a stored channel (the admin's, secrets masked; the
audit log's). The paged list is in services/channel_list.py, the chat path's directory in
services/channel_directory.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from app.models import (
    Channel,
    ChannelCreate,
    ChannelPublic,
    ChannelStatus,
    ChannelUpdate,
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
from services.security import KeyCipher, mask_key
from services.text import has_control_characters


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
