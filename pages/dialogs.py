"""Error dialogs: what went wrong, in the product's words, with a countdown for rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from pages.i18n import language, named_dialog, t
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
    (RateLimited, "common.dialog.rate_limited", "hourglass_top"),
    (AuthenticationRequired, "common.dialog.sign_in_first", "lock"),
    (UpstreamUnavailable, "common.dialog.upstream", "cloud_off"),
    (IPBlocked, "common.dialog.blocked", "block"),
    (ModelNotFound, "common.dialog.model", "help_outline"),
    (ShuttingDown, "common.dialog.restarting", "restart_alt"),
]


def show_error(error: DomainError, *, sign_in: Callable[[], Awaitable[None]] | None = None) -> ui.dialog:
    """``sign_in``: what the sign-in button of a "sign in first" error does (the sign-in page without it)."""
    title, icon = next(
        ((key, i) for kind, key, i in _TITLES if isinstance(error, kind)),
        ("common.dialog.error", "error_outline"),
    )
    with (
        named_dialog(t(title)) as dialog,
        ui.card().classes("items-center text-center").style("min-width: 280px"),
    ):
        ui.icon(icon, size="42px", color="primary")
        ui.label(t(title)).classes("text-lg font-semibold")
        ui.label(error.text(language())).classes("text-gray-500").mark("error-message")
        if isinstance(error, UpstreamUnavailable) and error.reason and error.reason != "all_busy":
            # overloaded, misconfigured or unreachable, in words; never the upstream's own details (a busy
            # model's message says so itself)
            ui.label(t(WORDS[kind_of(error.reason)])).classes("text-sm text-gray-500").mark("error-kind")
        if isinstance(error, IPBlocked):
            ui.label(t("common.dialog.ask_admin")).classes("text-sm text-gray-600")
        if isinstance(error, RateLimited) and error.retry_after:
            remaining = {"seconds": error.retry_after}
            countdown = (
                ui.label(t("common.dialog.retry_in", seconds=remaining["seconds"]))
                .classes("text-primary")
                .mark("countdown")
            )

            def tick() -> None:
                remaining["seconds"] -= 1
                if remaining["seconds"] <= 0:
                    countdown.text = t("common.dialog.retry_now")
                    timer.deactivate()
                else:
                    countdown.text = t("common.dialog.retry_in", seconds=remaining["seconds"])

            timer = ui.timer(1.0, tick)
        if isinstance(error, AuthenticationRequired):

            async def to_sign_in() -> None:
                dialog.close()
                if sign_in is None:
                    ui.navigate.to("/login")
                else:
                    await sign_in()

            ui.button(t("common.sign_in"), on_click=to_sign_in).props("unelevated").mark("dialog-sign-in")
        ui.button(t("common.dialog.ok"), on_click=dialog.close).props("unelevated").mark("dialog-ok")
    dialog.props("transition-show=scale transition-hide=scale")
    dialog.open()
    return dialog
