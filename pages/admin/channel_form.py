"""The channel dialog's form: its inputs, what they send, and every validation error at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from app.models import ChannelPublic
from pages.i18n import language, t
from services.channel_fields import base_url_notes, completions_url, normalize_base_url
from services.errors import InputRule, InvalidInput

LABELS = {
    "name": "admin.channel.field.name",
    "base_url": "admin.channel.field.base_url",
    "api_key": "admin.channel.field.api_key",
    "model_id": "admin.channel.field.model_id",
    "models": "admin.channel.field.models",
    "model_map": "admin.channel.field.model_map",
    "priority": "admin.channel.field.priority",
    "weight": "admin.channel.field.weight",
    "rpm_limit": "admin.channel.field.rpm_limit",
    "headers": "admin.channel.field.headers",
    "proxy": "admin.channel.field.proxy",
    "auto_pause_after": "admin.channel.field.auto_pause_after",
}
PROXY_CHOICES = {
    "env": "admin.channel.proxy.env",
    "direct": "admin.channel.proxy.direct",
    "url": "admin.channel.proxy.url",
}


_RULES = ("string_too_short", "greater_than_equal", "less_than_equal", "string_too_long", "int_parsing")
_COLON = "\uff1a"  # the Chinese messages' colon after a field's name


def _readable(error: Any) -> str:
    field = _field_of(error)
    kind = error["type"]
    if kind in _RULES:
        ctx = error.get("ctx") or {}
        readable = t(f"admin.channel.rule.{kind}", limit=ctx.get("ge", ctx.get("le")))
    else:
        readable = _words(error)
    for name in LABELS:  # the rules name their field in English: the dialog says it in words
        readable = readable.removeprefix(f"{name}{_COLON}").removeprefix(f"{name}: ")
    return t("admin.channel.error_line", field=_label(field), message=readable)


def _words(error: Any) -> str:
    """A rule's message in the visitor's language (pydantic's own words as they are)."""
    rule = (error.get("ctx") or {}).get("error")
    if isinstance(rule, InputRule):
        return rule.error.text(language())
    return str(error["msg"]).removeprefix("Value error, ")


def _label(field: str) -> str:
    return t(LABELS.get(field, "admin.channel.field.input"))


def _message_of(error: Any) -> str:
    """The error's words without its field's label (shown under the field itself)."""
    line = _readable(error)
    label = t("admin.channel.error_line", field=_label(_field_of(error)), message="")
    return line.removeprefix(label)


def _field_of(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    if not field:  # a rule of the whole form names its field first ("models：…")
        message = _words(error)
        field = next((name for name in LABELS if message.startswith((f"{name}{_COLON}", f"{name}: "))), "")
    return "models" if field == "model_id" else field


def all_errors(exc: ValidationError, extra: list[str] | None = None) -> str:
    """Every error of the form, one a line (the dialog shows them together)."""
    return "\n".join(dict.fromkeys([*(_readable(error) for error in exc.errors()), *(extra or [])]))


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").replace(",", "\n").splitlines() if part.strip()]


def _pairs(text: str | None, separator: str) -> dict[str, str]:
    """``name<separator>value`` lines; a line without the separator is a name with an empty value."""
    pairs: dict[str, str] = {}
    for line in (text or "").splitlines():
        if line.strip():
            name, _, value = line.partition(separator)
            pairs[name.strip()] = value.strip()
    return pairs


def call_url_preview(base_url: str) -> str:
    """The exact URL the calls will go to, and what was changed to get there."""
    try:
        url = completions_url(normalize_base_url(base_url))
    except InvalidInput as exc:
        return exc.text(language()).removeprefix(f"base_url{_COLON}").removeprefix("base_url: ")
    notes = base_url_notes(normalize_base_url(base_url))
    return t("admin.channel.call_url", url=url) + "".join(f"\n· {t(note)}" for note in notes)


@dataclass
class ChannelForm:
    """The inputs of the add/edit dialog (built inside it)."""

    channel: ChannelPublic | None

    def build(self) -> None:
        channel = self.channel
        self.name = (
            ui.input(t("admin.channel.field.name"), value=channel.name if channel else "")
            .classes("w-full")
            .mark("ch-name")
        )
        self.base_url = (
            ui.input(
                "Base URL", value=channel.base_url if channel else "", placeholder="https://api.openai.com/v1"
            )
            .classes("w-full")
            .mark("ch-base-url")
        )
        self.url_preview = (
            ui.label("").classes("text-xs text-gray-500 whitespace-pre-line").mark("ch-call-url")
        )
        self.base_url.on_value_change(lambda e: self.url_preview.set_text(call_url_preview(e.value or "")))
        self.url_preview.set_text(call_url_preview(self.base_url.value or ""))
        self.api_key = (
            ui.input("API Key", password=True, password_toggle_button=True, placeholder="sk-…")
            .classes("w-full")
            .mark("ch-api-key")
        )
        if channel:  # a hint under the field, shown without a click (a placeholder hides under the label)
            self.api_key.props(f'hint="{t("admin.channel.keep_key", masked=channel.api_key_masked)}"')
        self.models = (
            ui.textarea(t("admin.channel.models_input"), value="\n".join(channel.models) if channel else "")
            .props("autogrow")
            .classes("w-full")
            .mark("ch-model")
        )
        mapping = "\n".join(f"{k}={v}" for k, v in channel.model_map.items()) if channel else ""
        self.model_map = (
            ui.textarea(t("admin.channel.map_input"), value=mapping)
            .props("autogrow")
            .classes("w-full")
            .mark("ch-model-map")
        )
        with ui.row().classes("w-full no-wrap gap-2"):
            self.priority = ui.number(
                t("admin.channel.priority_input"), value=channel.priority if channel else 0, precision=0
            )
            self.priority.classes("flex-1").mark("ch-priority")
            self.weight = ui.number(
                t("admin.channel.weight_input"), value=channel.weight if channel else 1, min=1
            )
            self.weight.props("step=1").classes("flex-1").mark("ch-weight")
        with ui.row().classes("w-full no-wrap gap-2"):
            self.rpm = ui.number(
                t("admin.channel.field.rpm_limit"),
                value=channel.rpm_limit if channel else 60,
                min=1,
                precision=0,
            )
            self.rpm.classes("flex-1").mark("ch-rpm")
            self.auto_pause = ui.number(
                t("admin.channel.auto_pause_input"),
                value=channel.auto_pause_after if channel else None,
                min=0,
                precision=0,
            )
            self.auto_pause.classes("flex-1").mark("ch-auto-pause")
        header_names = "\n".join(f"{name}:" for name in channel.headers) if channel else ""
        self.headers = (
            ui.textarea(t("admin.channel.headers_input"), value=header_names)
            .props("autogrow")
            .classes("w-full")
            .mark("ch-headers")
        )
        current = (
            "env" if not channel or not channel.proxy_set else ("direct" if channel.proxy_direct else "url")
        )
        self.proxy_mode = (
            ui.select(
                {mode: t(key) for mode, key in PROXY_CHOICES.items()},
                value=current,
                label=t("admin.channel.field.proxy"),
            )
            .classes("w-full")
            .mark("ch-proxy-mode")
        )
        hint = t("admin.channel.proxy_saved") if current == "url" else "socks5h://user:pass@host:1080"
        self.proxy = (
            ui.input(t("admin.channel.proxy_url"), password=True, placeholder=hint)
            .classes("w-full")
            .mark("ch-proxy")
        )
        self.proxy.props(f'hint="{hint}"')
        self.proxy.bind_visibility_from(self.proxy_mode, "value", value="url")
        self.enabled = ui.switch(
            t("admin.channel.enabled"), value=channel.is_enabled if channel else True
        ).mark("ch-enabled")

    def _inputs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "models": self.models,
            "model_map": self.model_map,
            "priority": self.priority,
            "weight": self.weight,
            "rpm_limit": self.rpm,
            "auto_pause_after": self.auto_pause,
            "headers": self.headers,
            "proxy": self.proxy,
        }

    def clear_errors(self) -> None:
        for element in self._inputs().values():
            element.props(remove="error error-message")

    def missing(self) -> list[str]:
        """What the whole-form rules report only once the fields pass: said now, with the field errors."""
        if self.channel is None and not _split(self.models.value):
            self._mark("models", t("admin.channel.models_needed"))
            return [
                t(
                    "admin.channel.error_line",
                    field=_label("models"),
                    message=t("admin.channel.models_needed"),
                )
            ]
        return []

    def _mark(self, field: str, message: str) -> None:
        element = self._inputs().get(field)
        if element is not None:
            element.props(f'error error-message="{message.replace(chr(34), chr(39))}"')

    def show_errors(self, exc: ValidationError) -> None:
        """Each error on its own field too (red, its words under it)."""
        by_field: dict[str, list[str]] = {}
        for error in exc.errors():
            by_field.setdefault(_field_of(error), []).append(_message_of(error))
        for name, messages in by_field.items():
            self._mark(name, t("admin.channel.separator").join(dict.fromkeys(messages)))

    def data(self) -> dict[str, Any]:
        """What the dialog sends: a create's whole body, or an update's changes (secrets only when typed)."""
        channel = self.channel
        data: dict[str, Any] = {
            "name": self.name.value or "",
            "base_url": self.base_url.value or "",
            "models": _split(self.models.value),
            "model_map": _pairs(self.model_map.value, "="),
            "priority": int(self.priority.value or 0),
            "weight": int(self.weight.value) if self.weight.value is not None else 1,
            "rpm_limit": int(self.rpm.value) if self.rpm.value is not None else 0,
            "auto_pause_after": int(self.auto_pause.value) if self.auto_pause.value is not None else None,
            "is_enabled": bool(self.enabled.value),
        }
        headers = _pairs(self.headers.value, ":")
        stored = set(channel.headers) if channel else set()
        # a stored header left empty keeps its value (null); a new one is sent as typed
        data["headers"] = {k: (None if not v and k in stored else v) for k, v in headers.items()}
        if self.api_key.value or channel is None:
            data["api_key"] = self.api_key.value or ""
        mode = self.proxy_mode.value
        if mode == "env":
            data["proxy"] = None
        elif mode == "direct":
            data["proxy"] = ""
        elif self.proxy.value or not (channel and channel.proxy_set and not channel.proxy_direct):
            data["proxy"] = self.proxy.value or "-"  # an empty custom proxy is refused as a bad URL
        if channel is None and data["proxy"] is None:
            data.pop("proxy")
        return data
