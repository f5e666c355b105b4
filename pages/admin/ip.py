"""``/admin/ip``: the IP block list (addresses and CIDR ranges) and the recent blocked attempts."""

from __future__ import annotations

from nicegui import ui
from sqlmodel import Session

from app.models import BlockedAttempt, BlockedIP
from app.state import AppState
from pages.admin.frame import admin_frame, page_actor
from pages.forms import FormError
from pages.i18n import named_dialog, t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import ip_block
from services.audit import Actor
from services.errors import DomainError

ATTEMPT_COLUMNS = [("last", "left"), ("ip", "left"), ("path", "left"), ("rule", "left"), ("hits", "right")]


def _attempt_columns() -> list[dict[str, str]]:
    return [
        {"name": name, "label": t(f"admin.ip.col.{name}"), "field": name, "align": align}
        for name, align in ATTEMPT_COLUMNS
    ]


def _blocks_everyone(text: str) -> bool:
    """Whether ``text`` is a /0 range (every IPv4 or every IPv6 user); other mistakes are left to the
    service's message."""
    try:
        return ip_block.normalize_rule(text, confirm_all=True).endswith("/0")
    except DomainError:
        return False


async def _confirm_everyone(text: str) -> bool:
    with named_dialog(t("admin.ip.everyone_question")) as dialog, ui.card().classes("w-[min(420px,94vw)]"):
        ui.label(t("admin.ip.everyone_question")).classes("text-lg font-semibold")
        ui.label(t("admin.ip.everyone_note", rule=text.strip(), version=4 if ":" not in text else 6)).classes(
            "text-sm"
        )
        with ui.row().classes("w-full justify-end"):
            ui.button(t("admin.cancel"), on_click=lambda: dialog.submit(False)).props("flat").mark(
                "ip-confirm-cancel"
            )
            ui.button(t("admin.ip.confirm_block"), on_click=lambda: dialog.submit(True)).props(
                "unelevated color=negative"
            ).mark("ip-confirm-all")
    confirmed = bool(await dialog)
    dialog.delete()
    return confirmed


def register(state: AppState) -> None:
    zone = state.settings.zone

    def add(address: str, reason: str, confirm_all: bool, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.block_list.add(
                session=session, ip_address=address, reason=reason, confirm_all=confirm_all, actor=actor
            )

    def remove(rule_id: int, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.block_list.remove(session=session, rule_id=rule_id, actor=actor)

    def rules() -> list[BlockedIP]:
        with Session(state.engine) as session:
            return ip_block.list_rules(session=session)

    def attempts() -> list[BlockedAttempt]:
        state.block_list.flush()
        with Session(state.engine) as session:
            return ip_block.list_attempts(session=session, limit=200)

    @ui.page("/admin/ip", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def ip_page() -> None:
        async with admin_frame(state, "admin.nav.ip", "/admin/ip") as content:
            if content is None:
                return
            ui.label(t("admin.ip.title")).classes("text-xl font-semibold")
            ui.label(t("admin.ip.intro")).classes("text-sm text-gray-500")
            with ui.card().classes("w-full"), ui.row().classes("w-full items-start gap-3"):
                address = (
                    ui.input(t("admin.ip.address"), placeholder=t("admin.ip.address_hint"))
                    .props("dense outlined")
                    .classes("min-w-[240px]")
                    .mark("ip-address")
                )
                reason = (
                    ui.input(t("admin.ip.reason")).props("dense outlined").classes("grow").mark("ip-reason")
                )

                async def submit() -> None:
                    error.clear()
                    confirm_all = _blocks_everyone(address.value or "")
                    if confirm_all and not await _confirm_everyone(address.value or ""):
                        return
                    if (actor := await page_actor(state)) is None:
                        return
                    if not await error.attempt(
                        lambda: off_loop(add, address.value or "", reason.value or "", confirm_all, actor)
                    ):
                        return
                    ui.notify(t("admin.ip.blocked", rule=address.value), type="positive")
                    address.value = ""
                    reason.value = ""
                    await reload_rules()

                ui.button(t("admin.ip.add"), icon="block", on_click=submit).props("unelevated").mark("ip-add")
            error = FormError("ip-error")

            async def reload_rules() -> None:
                rule_list.refresh(await off_loop(rules))

            @ui.refreshable
            def rule_list(rows: list[BlockedIP]) -> None:
                with ui.card().classes("w-full p-0"):
                    if not rows:
                        ui.label(t("admin.ip.empty")).classes("p-4 text-gray-500")
                        return
                    with ui.list().props("separator").classes("w-full"):
                        for row in rows:
                            with ui.item().mark("ip-rule"):
                                with ui.item_section():
                                    ui.item_label(row.ip_address).classes("font-mono")
                                    added = row.created_at.astimezone(zone)
                                    ui.item_label(
                                        f"{row.reason or t('admin.ip.no_reason')} · {added:%Y-%m-%d %H:%M}"
                                    ).props("caption")
                                with ui.item_section().props("side"):

                                    async def delete(rule_id: int | None = row.id) -> None:
                                        if rule_id is None:  # a stored rule always has its id
                                            return
                                        if (actor := await page_actor(state)) is None:
                                            return
                                        await off_loop(remove, rule_id, actor)
                                        ui.notify(t("admin.ip.removed"), type="positive")
                                        await reload_rules()

                                    ui.button(icon="delete", on_click=delete).props(
                                        "flat round dense color=negative "
                                        f'aria-label="{t("admin.ip.remove_rule", rule=row.ip_address)}"'
                                    ).tooltip(t("admin.ip.remove")).mark("ip-delete")

            rule_list(await off_loop(rules))

            with ui.row().classes("w-full items-center mt-4"):
                ui.label(t("admin.ip.attempts")).classes("text-lg font-semibold")
                ui.space()
                ui.button(t("admin.refresh"), icon="refresh", on_click=lambda: load_attempts()).props(
                    "flat"
                ).mark("attempts-refresh")
            table = (
                ui.table(columns=_attempt_columns(), rows=[], row_key="id")
                .classes("w-full")
                .props("flat bordered dense")
                .mark("attempts")
            )

            async def load_attempts() -> None:
                table.rows = [
                    {
                        "id": a.id,
                        "last": a.last_seen_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                        "ip": a.ip_address,
                        "path": a.path,
                        "rule": a.matched_rule,
                        "hits": a.hits,
                    }
                    for a in await off_loop(attempts)
                ]

            await load_attempts()
