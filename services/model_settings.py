"""Per-model settings (``model_settings``): an admin's defaults for the chat page's conversation
settings (system prompt, temperature, top-p, max tokens) and whether a model takes images.

Cached like the other small tables (services/refresh.py): the chat path reads the cache, never the
database, and the vision check (a decision) never uses a value older than the period."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import ModelSetting, utcnow
from services import audit
from services.audit import Actor
from services.errors import InvalidInput
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads

FIELDS = ("system_prompt", "temperature", "top_p", "max_tokens", "vision")
SAMPLING = ("temperature", "top_p", "max_tokens")
MAX_SYSTEM_PROMPT_CHARS = 200_000
MAX_MODEL_CHARS = 200
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
MAX_TOKENS_RANGE = (1, 10_000_000)


@dataclass(frozen=True)
class ModelDefaults:
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    vision: bool = False

    def sampling(self) -> dict[str, float | int]:
        """The sampling parameters the admin set (the ones left unset are not sent)."""
        values = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        return {key: value for key, value in values.items() if value is not None}


NO_DEFAULTS = ModelDefaults()


def _number(name: str, value: Any, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("model_settings.number_range", name=name, low=f"{low:g}", high=f"{high:g}")
    if not low <= value <= high:
        raise InvalidInput("model_settings.number_range", name=name, low=f"{low:g}", high=f"{high:g}")
    return float(value)


def validated(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked field by field (None clears a default); unknown fields are refused."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidInput("model_settings.unknown_fields", names=", ".join(sorted(unknown)))
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "system_prompt":
            if value is not None and not isinstance(value, str):
                raise InvalidInput("model_settings.prompt_not_text")
            if value is not None and len(value) > MAX_SYSTEM_PROMPT_CHARS:
                raise InvalidInput("model_settings.prompt_too_long", limit=MAX_SYSTEM_PROMPT_CHARS)
            checked[key] = value or None
        elif key == "temperature":
            checked[key] = _number(key, value, *TEMPERATURE_RANGE)
        elif key == "top_p":
            checked[key] = _number(key, value, *TOP_P_RANGE)
        elif key == "max_tokens":
            low, high = MAX_TOKENS_RANGE
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise InvalidInput("model_settings.max_tokens_range", low=low, high=high)
            checked[key] = value
        else:
            if not isinstance(value, bool):
                raise InvalidInput("model_settings.vision_bool")
            checked[key] = value
    return checked


def _defaults(row: ModelSetting) -> ModelDefaults:
    return ModelDefaults(
        system_prompt=row.system_prompt,
        temperature=row.temperature,
        top_p=row.top_p,
        max_tokens=row.max_tokens,
        vision=bool(row.vision),
    )


def read_all(*, session: Session) -> dict[str, ModelDefaults]:
    return {row.model: _defaults(row) for row in session.exec(select(ModelSetting)).all()}


def _audit_view(values: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """The audited fields; a system prompt (long, perhaps private) is named set/changed/removed only."""
    view = {key: values[key] for key in keys}
    if view.get("system_prompt"):
        view["system_prompt"] = audit.Secret.of(view["system_prompt"])
    return view


def update_model(
    *, session: Session, model: str, changes: dict[str, Any], actor: Actor | None = None
) -> ModelDefaults:
    """Store ``changes`` for ``model`` (a row is made on its first change); ``actor``'s
    ``model.update`` row, when something changed, is committed with it."""
    model = model.strip()
    if not model or len(model) > MAX_MODEL_CHARS:
        raise InvalidInput("model_settings.name_length", limit=MAX_MODEL_CHARS)
    checked = validated(changes)
    row = session.exec(select(ModelSetting).where(ModelSetting.model == model)).first()
    before = asdict(_defaults(row)) if row is not None else asdict(NO_DEFAULTS)
    if row is None:
        row = ModelSetting(model=model)
    for key, value in checked.items():
        setattr(row, key, value)
    after = asdict(_defaults(row))
    if actor is not None:
        diff = audit.diff(_audit_view(before, checked), _audit_view(after, checked))
        if diff:
            audit.add(session, actor, "model.update", target=f"model:{model}", changes=diff)
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    return _defaults(row)


class ModelSettingsStore:
    """Every model's settings, cached (services/refresh.py): reloaded at once after a change on any
    instance; the vision check never uses a value older than the period."""

    def __init__(self, engine: Engine, period: float = PERIOD_SECONDS) -> None:
        self._engine = engine
        self._current: dict[str, ModelDefaults] = {}
        self.refresher = Refresher(self._load, "model_settings", period)

    def load(self) -> None:
        self.refresher.load_first()

    def _load(self) -> None:
        with Session(self._engine) as session:
            bounded_reads(session)
            self._current = read_all(session=session)

    def update(
        self, *, session: Session, model: str, changes: dict[str, Any], actor: Actor | None
    ) -> ModelDefaults:
        result = update_model(session=session, model=model, changes=changes, actor=actor)
        self.refresher.changed()  # only after the commit
        return result

    def get(self, model: str) -> ModelDefaults:
        """For what decides nothing (the chat page's defaults, the model list)."""
        self.refresher.ensure()
        return self._current.get(model, NO_DEFAULTS)

    def all(self) -> dict[str, ModelDefaults]:
        self.refresher.ensure()
        return dict(self._current)

    async def for_decision(self, model: str) -> ModelDefaults:
        await self.refresher.until_fresh()
        return self._current.get(model, NO_DEFAULTS)
