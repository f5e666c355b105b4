"""/api/admin/models: per-model defaults for the chat page and the vision flag (admin token required)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from app.api.deps import AdminActor, AdminUser, SessionDep, StateDep
from app.schemas import ErrorBody, ModelSettingsPublic, ModelSettingsUpdate
from app.state import AppState
from services import model_settings
from services.model_settings import MAX_MODEL_CHARS, ModelDefaults

router = APIRouter(
    prefix="/admin/models",
    tags=["admin: models"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
ModelName = Path(min_length=1, max_length=MAX_MODEL_CHARS, description="a public model name")


def _public(name: str, values: ModelDefaults, served: bool) -> ModelSettingsPublic:
    return ModelSettingsPublic(model=name, served=served, **vars(values))


def _served(state: AppState) -> list[str]:
    return [model_id for model_id, _ in state.chat.model_names()]


@router.get("", response_model=list[ModelSettingsPublic])
def list_models(_admin: AdminUser, session: SessionDep, state: StateDep) -> list[ModelSettingsPublic]:
    """Every model an enabled channel serves, and every model with stored settings."""
    stored = model_settings.read_all(session=session)
    served = _served(state)
    names = served + sorted(set(stored) - set(served))
    return [_public(name, stored.get(name, model_settings.NO_DEFAULTS), name in served) for name in names]


@router.get("/{name:path}", response_model=ModelSettingsPublic)
def get_model(
    _admin: AdminUser, session: SessionDep, state: StateDep, name: str = ModelName
) -> ModelSettingsPublic:
    """A model's settings (all empty for a model without any)."""
    stored = model_settings.read_all(session=session).get(name, model_settings.NO_DEFAULTS)
    return _public(name, stored, name in _served(state))


@router.put("/{name:path}", response_model=ModelSettingsPublic, responses={422: {"model": ErrorBody}})
def put_model(
    body: ModelSettingsUpdate, actor: AdminActor, session: SessionDep, state: StateDep, name: str = ModelName
) -> ModelSettingsPublic:
    """Change the fields given (``null`` clears one); in effect at once on every instance."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("vision", False) is None:
        changes.pop("vision")  # (null: leave as it is)
    values = state.model_settings.update(session=session, model=name, changes=changes, actor=actor)
    return _public(name, values, name in _served(state))
