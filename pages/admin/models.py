"""``/admin/models``: each model's conversation defaults (system prompt, temperature, top-p, max tokens)
and whether it takes images; saved through ``services.model_settings`` (audited, in effect at once)."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame, page_actor
from pages.forms import FormError
from pages.i18n import t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import model_settings
from services.audit import Actor
from services.model_settings import MAX_TOKENS_RANGE, TEMPERATURE_RANGE, TOP_P_RANGE, ModelDefaults

NUMBERS = (
    ("temperature", "models.temperature", TEMPERATURE_RANGE, False),
    ("top_p", "models.top_p", TOP_P_RANGE, False),
    ("max_tokens", "models.max_tokens", MAX_TOKENS_RANGE, True),
)


class ModelCard:
    """One model's form."""

    def __init__(self, state: AppState, name: str, values: ModelDefaults, served: bool) -> None:
        self.state = state
        self.name = name
        with ui.card().classes("w-full gap-2").mark(f"model-{name}"):
            with ui.row().classes("items-center gap-2"):
                ui.label(name).classes("text-lg font-medium").mark("model-name")
                if not served:
                    ui.label(t("models.not_served")).classes("text-sm")
            self.vision = ui.switch(t("models.vision"), value=values.vision).mark("vision")
            self.system_prompt = (
                ui.textarea(t("models.system_prompt"), value=values.system_prompt or "")
                .props("outlined autogrow")
                .classes("w-full")
                .style("max-height: 30vh; overflow-y: auto")
                .mark("default-system-prompt")
            )
            self.numbers: dict[str, ui.number] = {}
            with ui.row().classes("w-full gap-3"):
                for key, label, _range, _integer in NUMBERS:
                    number = ui.number(t(label), value=getattr(values, key)).props("outlined dense clearable")
                    number.props["hint"] = t("models.empty_hint")
                    self.numbers[key] = number.classes("grow").mark(f"default-{key}")
            self.error = FormError("model-error")
            ui.button(t("models.save"), icon="save", on_click=self.save).props("unelevated").mark(
                "model-save"
            )

    def changes(self) -> dict[str, Any] | None:
        values: dict[str, Any] = {
            "vision": bool(self.vision.value),
            "system_prompt": self.system_prompt.value,
        }
        for key, label, (low, high), integer in NUMBERS:
            value = self.numbers[key].value
            if value is not None and (not low <= value <= high or (integer and value != int(value))):
                self.error.say(t("models.bad_number", field=t(label), low=low, high=high))
                return None
            values[key] = None if value is None else (int(value) if integer else float(value))
        return values

    async def save(self) -> None:
        self.error.clear()
        changes = self.changes()
        if changes is None or (actor := await page_actor(self.state)) is None:
            return
        if await self.error.attempt(lambda: off_loop(_save, self.state, self.name, changes, actor)):
            ui.notify(t("models.saved", model=self.name), type="positive")


def _save(state: AppState, name: str, changes: dict[str, Any], actor: Actor) -> None:
    with Session(state.engine) as session:
        state.model_settings.update(session=session, model=name, changes=changes, actor=actor)


def _load(state: AppState) -> list[tuple[str, ModelDefaults, bool]]:
    with Session(state.engine) as session:
        stored = model_settings.read_all(session=session)
    served = [model_id for model_id, _ in state.chat.model_names()]
    names = served + sorted(set(stored) - set(served))
    return [(name, stored.get(name, model_settings.NO_DEFAULTS), name in served) for name in names]


def register(state: AppState) -> None:
    @ui.page("/admin/models", title="Models · pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def models_page() -> None:
        async with admin_frame(state, "models.title", "/admin/models") as content:
            if content is None:
                return
            rows = await off_loop(_load, state)
            ui.label(t("models.title")).classes("text-xl font-semibold")
            ui.label(t("models.intro")).classes("text-sm")
            if not rows:
                ui.label(t("models.none")).mark("models-empty")
            for name, values, served in rows:
                ModelCard(state, name, values, served)
