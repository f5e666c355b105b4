"""``/admin/ip``: the IP block list (addresses and CIDR ranges) and the recent blocked attempts."""

from __future__ import annotations

from nicegui import ui
from sqlmodel import Session

from app.models import BlockedAttempt, BlockedIP
from app.state import AppState
from pages.admin.frame import admin_frame, page_actor
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import ip_block
from services.audit import Actor
from services.errors import DomainError

ATTEMPT_COLUMNS = [
    {"name": "last", "label": "最近一次", "field": "last", "align": "left"},
    {"name": "ip", "label": "IP", "field": "ip", "align": "left"},
    {"name": "path", "label": "访问路径", "field": "path", "align": "left"},
    {"name": "rule", "label": "命中规则", "field": "rule", "align": "left"},
    {"name": "hits", "label": "次数", "field": "hits", "align": "right"},
]


def _blocks_everyone(text: str) -> bool:
    """Whether ``text`` is a /0 range (every IPv4 or every IPv6 user); other mistakes are left to the
    service's message."""
    try:
        return ip_block.normalize_rule(text, confirm_all=True).endswith("/0")
    except DomainError:
        return False


async def _confirm_everyone(text: str) -> bool:
    with ui.dialog() as dialog, ui.card().classes("w-[min(420px,94vw)]"):
        ui.label("禁用所有用户？").classes("text-lg font-semibold")
        ui.label(
            f"{text.strip()} 会禁用所有 IPv{4 if ':' not in text else 6} 用户访问聊天页面、登录注册"
            "和 /api/chat；管理后台不受影响。"
        ).classes("text-sm")
        with ui.row().classes("w-full justify-end"):
            ui.button("取消", on_click=lambda: dialog.submit(False)).props("flat").mark("ip-confirm-cancel")
            ui.button("确认禁用", on_click=lambda: dialog.submit(True)).props(
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

    @ui.page("/admin/ip", title="IP 管理 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def ip_page() -> None:
        async with admin_frame(state, "IP 管理", "/admin/ip") as content:
            if content is None:
                return
            ui.label("IP 禁用列表").classes("text-xl font-semibold")
            ui.label("被禁用的 IP 无法访问聊天页面、登录注册和 /api/chat 接口；管理后台不受影响。").classes(
                "text-sm text-gray-500"
            )
            with ui.card().classes("w-full"), ui.row().classes("w-full items-start gap-3"):
                address = (
                    ui.input("IP 地址或网段", placeholder="203.0.113.7 或 192.168.1.0/24")
                    .props("dense outlined")
                    .classes("min-w-[240px]")
                    .mark("ip-address")
                )
                reason = ui.input("原因（可选）").props("dense outlined").classes("grow").mark("ip-reason")

                async def submit() -> None:
                    error.set_visibility(False)
                    confirm_all = _blocks_everyone(address.value or "")
                    if confirm_all and not await _confirm_everyone(address.value or ""):
                        return
                    if (actor := await page_actor(state)) is None:
                        return
                    try:
                        await off_loop(add, address.value or "", reason.value or "", confirm_all, actor)
                    except DomainError as exc:
                        error.text = exc.message
                        error.set_visibility(True)
                        return
                    ui.notify(f"已禁用 {address.value}", type="positive")
                    address.value = ""
                    reason.value = ""
                    await reload_rules()

                ui.button("添加", icon="block", on_click=submit).props("unelevated").mark("ip-add")
            error = ui.label("").classes("text-negative text-sm").mark("ip-error")
            error.set_visibility(False)

            async def reload_rules() -> None:
                rule_list.refresh(await off_loop(rules))

            @ui.refreshable
            def rule_list(rows: list[BlockedIP]) -> None:
                with ui.card().classes("w-full p-0"):
                    if not rows:
                        ui.label("禁用列表为空").classes("p-4 text-gray-500")
                        return
                    with ui.list().props("separator").classes("w-full"):
                        for row in rows:
                            with ui.item().mark("ip-rule"):
                                with ui.item_section():
                                    ui.item_label(row.ip_address).classes("font-mono")
                                    added = row.created_at.astimezone(zone)
                                    ui.item_label(
                                        f"{row.reason or '未填写原因'} · {added:%Y-%m-%d %H:%M}"
                                    ).props("caption")
                                with ui.item_section().props("side"):

                                    async def delete(rule_id: int | None = row.id) -> None:
                                        if rule_id is None:  # a stored rule always has its id
                                            return
                                        if (actor := await page_actor(state)) is None:
                                            return
                                        await off_loop(remove, rule_id, actor)
                                        ui.notify("已移除", type="positive")
                                        await reload_rules()

                                    ui.button(icon="delete", on_click=delete).props(
                                        "flat round dense color=negative"
                                    ).tooltip("移除").mark("ip-delete")

            rule_list(await off_loop(rules))

            with ui.row().classes("w-full items-center mt-4"):
                ui.label("最近被拦截的访问").classes("text-lg font-semibold")
                ui.space()
                ui.button("刷新", icon="refresh", on_click=lambda: load_attempts()).props("flat").mark(
                    "attempts-refresh"
                )
            table = (
                ui.table(columns=ATTEMPT_COLUMNS, rows=[], row_key="id")
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
