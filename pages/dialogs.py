"""Error dialogs: what went wrong, in the product's words, with a countdown for rate limits."""

from __future__ import annotations

from nicegui import ui

from services.errors import (
    AuthenticationRequired,
    DomainError,
    IPBlocked,
    ModelNotFound,
    RateLimited,
    ShuttingDown,
    UpstreamUnavailable,
)
from services.reasons import WORDS, kind_of

_TITLES: list[tuple[type[DomainError], str, str]] = [
    (RateLimited, "请求过于频繁", "hourglass_top"),
    (AuthenticationRequired, "请先登录", "lock"),
    (UpstreamUnavailable, "上游服务暂不可用", "cloud_off"),
    (IPBlocked, "访问受限", "block"),
    (ModelNotFound, "模型不可用", "help_outline"),
    (ShuttingDown, "服务正在重启", "restart_alt"),
]


def show_error(error: DomainError) -> ui.dialog:
    title, icon = next(
        ((t, i) for kind, t, i in _TITLES if isinstance(error, kind)), ("出错了", "error_outline")
    )
    with ui.dialog() as dialog, ui.card().classes("items-center text-center").style("min-width: 280px"):
        ui.icon(icon, size="42px", color="primary")
        ui.label(title).classes("text-lg font-semibold")
        ui.label(error.message).classes("text-gray-500").mark("error-message")
        if isinstance(error, UpstreamUnavailable) and error.reason and error.reason != "all_busy":
            # overloaded, misconfigured or unreachable, in words; never the upstream's own details (a busy
            # model's message says so itself)
            ui.label(WORDS[kind_of(error.reason)]).classes("text-sm text-gray-500").mark("error-kind")
        if isinstance(error, IPBlocked):
            ui.label("如有疑问，请联系管理员。").classes("text-sm text-gray-400")
        if isinstance(error, RateLimited) and error.retry_after:
            remaining = {"seconds": error.retry_after}
            countdown = (
                ui.label(f"{remaining['seconds']} 秒后可以重试").classes("text-primary").mark("countdown")
            )

            def tick() -> None:
                remaining["seconds"] -= 1
                if remaining["seconds"] <= 0:
                    countdown.text = "现在可以重试了"
                    timer.deactivate()
                else:
                    countdown.text = f"{remaining['seconds']} 秒后可以重试"

            timer = ui.timer(1.0, tick)
        if isinstance(error, AuthenticationRequired):
            ui.button("登录", on_click=lambda: ui.navigate.to("/login")).props("unelevated").mark(
                "dialog-sign-in"
            )
        ui.button("知道了", on_click=dialog.close).props("unelevated").mark("dialog-ok")
    dialog.props("transition-show=scale transition-hide=scale")
    dialog.open()
    return dialog
