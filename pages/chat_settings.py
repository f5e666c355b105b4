"""The chat page's conversation settings: a side panel (opened by the header's "Settings" button) with
the system prompt, temperature, top-p and max tokens of this conversation.

Like the history, they live in the page only. A field left empty takes the admin's default for the
chosen model (``services.model_settings``, read from its cache, never from the database per message);
a field without either is not sent, so the upstream's own default applies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from pages.i18n import named_dialog, t
from services.model_settings import (
    MAX_TOKENS_RANGE,
    NO_DEFAULTS,
    TEMPERATURE_RANGE,
    TOP_P_RANGE,
    ModelDefaults,
    ModelSettingsStore,
)


@dataclass(frozen=True)
class _Field:
    key: str
    label: str
    low: float
    high: float
    step: float
    integer: bool = False


FIELDS = (
    _Field("temperature", "convo.temperature", *TEMPERATURE_RANGE, step=0.1),
    _Field("top_p", "convo.top_p", *TOP_P_RANGE, step=0.05),
    _Field("max_tokens", "convo.max_tokens", *MAX_TOKENS_RANGE, step=1, integer=True),
)


class ConversationSettings:
    """The panel and the values it holds; :meth:`request` builds a call's messages and parameters."""

    def __init__(self, store: ModelSettingsStore, model: Callable[[], str | None]) -> None:
        self.store = store
        self.model = model  # the model chosen in the header now
        self.numbers: dict[str, ui.number] = {}

    def defaults(self) -> ModelDefaults:
        model = self.model()
        return self.store.get(model) if model else NO_DEFAULTS

    # ---- UI ----------------------------------------------------------------------------------------
    def button(self) -> ui.button:
        """The header button that opens the panel."""
        label = t("convo.settings")
        return (
            ui.button(icon="tune", on_click=self.open)
            .props(f'flat round dense aria-label="{label}"')
            .tooltip(label)
            .mark("settings")
        )

    def build(self) -> None:
        """The panel: a dialog that slides in from the right, kept (with its values) while closed."""
        with (
            named_dialog(t("convo.settings_title")).props("position=right") as self.dialog,
            ui.card()
            .classes("convo-settings q-pa-md gap-3")
            .style("width: min(380px, 100vw); height: 100vh; max-height: 100vh; overflow-y: auto"),
        ):
            with ui.row().classes("w-full items-center no-wrap"):
                title = ui.label(t("convo.settings_title")).classes("text-lg font-medium")
                title.props('role="heading" aria-level="2"')
                ui.space()
                close = t("convo.close")
                ui.button(icon="close", on_click=self.dialog.close).props(
                    f'flat round dense aria-label="{close}"'
                ).mark("settings-close")
            ui.label(t("convo.settings_hint")).classes("text-sm").mark("settings-hint")
            self.vision_note = ui.label().classes("text-sm").mark("settings-vision")
            self.system_prompt = (
                ui.textarea(t("convo.system_prompt"))
                .props("outlined autogrow clearable")
                .classes("w-full")
                .style("max-height: 40vh; overflow-y: auto")
                .mark("system-prompt")
            )
            for spec in FIELDS:
                self.numbers[spec.key] = (
                    ui.number(
                        t(spec.label),
                        min=spec.low,
                        max=spec.high,
                        step=spec.step,
                        precision=0 if spec.integer else 2,
                    )
                    .props("outlined clearable dense")
                    .classes("w-full")
                    .mark(spec.key)
                )
            ui.button(t("convo.reset"), icon="restart_alt", on_click=self.reset).props("flat no-caps").mark(
                "settings-reset"
            )
        self.show_defaults()

    def open(self) -> None:
        self.show_defaults()
        self.dialog.open()

    def reset(self) -> None:
        self.system_prompt.value = ""
        for number in self.numbers.values():
            number.value = None

    def show_defaults(self) -> None:
        """The model's defaults as each empty field's hint (after a change of model, too)."""
        defaults = self.defaults()
        if not hasattr(self, "dialog"):
            return
        prompt = defaults.system_prompt
        self.system_prompt.props["placeholder"] = (
            t("convo.default_value", value=_short(prompt)) if prompt else ""
        )
        self.system_prompt.update()
        for key, number in self.numbers.items():
            value = getattr(defaults, key)
            hint = t("convo.upstream_default") if value is None else t("convo.default_value", value=value)
            number.props["hint"] = hint
            number.update()
        self.vision_note.text = t("convo.vision_yes" if defaults.vision else "convo.vision_no")

    # ---- the request -------------------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why the values cannot be sent (a number out of its range), or None."""
        for spec in FIELDS:
            value = self.numbers[spec.key].value if spec.key in self.numbers else None
            if value is not None and not spec.low <= value <= spec.high:
                low, high = (int(spec.low), int(spec.high)) if spec.integer else (spec.low, spec.high)
                return t("convo.bad_number", field=t(spec.label), low=low, high=high)
        return None

    def request(self, model: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        """A streamed call's body: the system prompt first, then the history, and the parameters set
        here or by the admin for ``model``."""
        defaults = self.store.get(model)
        own_prompt = (self.system_prompt.value or "") if hasattr(self, "system_prompt") else ""
        prompt = own_prompt or defaults.system_prompt
        messages = ([{"role": "system", "content": prompt}] if prompt else []) + list(history)
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
        for spec in FIELDS:
            own = self.numbers[spec.key].value if spec.key in self.numbers else None
            value = own if own is not None else getattr(defaults, spec.key)
            if value is not None:
                body[spec.key] = int(value) if spec.integer else float(value)
        return body


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
