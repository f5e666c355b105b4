"""The chat page's account menu dialogs: "修改密码" and "API 密钥" (personal keys: list, create — the key
shown once with a copy button and the ready base URL — and revoke). The rules are the services'
(``services.login.change_password``, ``services.api_keys``); database work runs off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nicegui import ui
from sqlmodel import Session

from app.models import ApiKey, utcnow
from app.state import AppState
from pages.session import sign_in
from pages.threads import off_loop
from services import api_keys
from services import login as login_flow
from services.errors import DomainError, NotFound
from services.identity import Identity

EXPIRY_CHOICES = {0: "永不过期", 7: "7 天", 30: "30 天", 90: "90 天", 365: "1 年"}


# ---- password -----------------------------------------------------------------------------------------
def open_password_dialog(state: AppState, user: Identity, ip: str) -> ui.dialog:
    with ui.dialog() as dialog, ui.card().style("min-width: 340px").mark("password-dialog"):
        ui.label("修改密码").classes("text-lg font-semibold")
        ui.label("修改后，其他设备上的登录会退出；API 密钥不受影响。").classes("text-sm text-gray-500")
        old = ui.input("原密码", password=True).props("outlined dense").classes("w-full").mark("old-password")
        new = (
            ui.input("新密码（至少 8 位）", password=True, password_toggle_button=True)
            .props("outlined dense")
            .classes("w-full")
            .mark("new-password")
        )
        again = (
            ui.input("确认新密码", password=True)
            .props("outlined dense")
            .classes("w-full")
            .mark("confirm-password")
        )
        error = ui.label("").classes("text-negative text-sm").mark("password-error")

        async def submit() -> None:
            if (new.value or "") != (again.value or ""):
                error.text = "两次输入的新密码不一致"
                return
            button.disable()
            try:
                token = await login_flow.change_password(
                    engine=state.engine,
                    throttle=state.throttle,
                    identity=state.identity,
                    user_id=user.id,
                    email=user.email,
                    old_password=old.value or "",
                    new_password=new.value or "",
                    ip=ip,
                    secret=state.secret_key,
                    lifetime=timedelta(hours=state.settings.user_token_hours),
                )
            except DomainError as exc:
                error.text = exc.message.split("：", 1)[-1]
                return
            finally:
                button.enable()
            sign_in(state, token)
            dialog.close()
            ui.notify("密码已修改，其他设备上的登录已退出", type="positive")

        with ui.row().classes("w-full justify-end"):
            ui.button("取消", on_click=dialog.close).props("flat")
            button = ui.button("确认修改", on_click=submit).props("unelevated").mark("password-submit")
    dialog.open()
    return dialog


# ---- personal API keys --------------------------------------------------------------------------------
def _when(moment: datetime | None, zone: ZoneInfo, never: str = "—") -> str:
    if moment is None:
        return never
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _list(state: AppState, user_id: int) -> list[ApiKey]:
    with Session(state.engine, expire_on_commit=False) as session:
        return api_keys.list_keys(session=session, user_id=user_id)


def _create(state: AppState, user_id: int, name: str, days: int) -> tuple[ApiKey, str]:
    expires_at = utcnow() + timedelta(days=days) if days else None
    with Session(state.engine, expire_on_commit=False) as session:
        row, plain = api_keys.create_key(session=session, user_id=user_id, name=name, expires_at=expires_at)
    state.identity.keys_changed()
    return row, plain


def _revoke(state: AppState, user_id: int, key_id: int) -> None:
    with Session(state.engine) as session:
        if not api_keys.revoke_key(session=session, key_id=key_id, user_id=user_id):
            raise NotFound("API 密钥不存在")
    state.identity.keys_changed()


class KeysDialog:
    """The list of one's keys, a create form, and the one-time display of a new key."""

    def __init__(self, state: AppState, user: Identity, base_url: str) -> None:
        self.state = state
        self.user = user
        self.base_url = base_url
        self.zone = state.settings.zone

    async def open(self) -> None:
        with ui.dialog() as self.dialog, ui.card().style("min-width: min(640px, 95vw)").mark("keys-dialog"):
            with ui.row().classes("w-full items-center"):
                ui.label("API 密钥").classes("text-lg font-semibold")
                ui.space()
                ui.button(icon="close", on_click=self.dialog.close).props("flat round dense")
            ui.label(
                f"在聊天应用（OpenAI SDK、Open WebUI、LobeChat、NextChat 等）中填写 Base URL {self.base_url} "
                "和一个密钥即可使用。密钥与你的账号共用同一个速率限制。"
            ).classes("text-sm text-gray-500")
            self.created = ui.column().classes("w-full")
            with ui.row().classes("w-full items-end gap-2 no-wrap"):
                self.name = (
                    ui.input("名称", placeholder="例如 NextChat")
                    .props("outlined dense maxlength=100")
                    .classes("grow")
                    .mark("key-name")
                )
                self.expiry = (
                    ui.select(EXPIRY_CHOICES, value=0, label="有效期")
                    .props("outlined dense")
                    .style("min-width: 120px")
                    .mark("key-expiry")
                )
                ui.button("创建密钥", on_click=self.create).props("unelevated no-caps").mark("key-create")
            self.error = ui.label("").classes("text-negative text-sm").mark("key-error")
            self.table = ui.column().classes("w-full gap-1").mark("key-list")
        self.dialog.open()
        await self.refresh()

    async def refresh(self) -> None:
        keys = await off_loop(_list, self.state, self.user.id)
        self.table.clear()
        with self.table:
            if not keys:
                ui.label("还没有密钥").classes("text-gray-500 text-sm").mark("key-empty")
            for key in keys:
                self._row(key)

    def _row(self, key: ApiKey) -> None:
        ends = key.expires_at
        expired = ends is not None and (ends if ends.tzinfo else ends.replace(tzinfo=UTC)) <= utcnow()
        with ui.row().classes("w-full items-center no-wrap gap-3").mark(f"key-row-{key.id}"):
            with ui.column().classes("grow gap-0"):
                ui.label(key.name).classes("font-medium")
                ui.label(f"{key.prefix}…").classes("text-xs text-gray-500 font-mono")
            with ui.column().classes("gap-0 text-xs text-gray-500"):
                ui.label(f"创建：{_when(key.created_at, self.zone)}")
                ui.label(f"最近使用：{_when(key.last_used_at, self.zone, '从未')}")
                expiry = _when(key.expires_at, self.zone, "永不过期")
                ui.label(f"过期：{expiry}{'（已过期）' if expired else ''}")
            assert key.id is not None
            ui.button(icon="delete", on_click=self._confirm_revoke(key.id, key.name)).props(
                "flat round dense color=negative"
            ).tooltip("撤销").mark(f"key-revoke-{key.id}")

    def _confirm_revoke(self, key_id: int, name: str) -> Callable[[], None]:
        def ask() -> None:
            with ui.dialog() as confirm, ui.card().mark("revoke-dialog"):
                ui.label(f"撤销密钥“{name}”？").classes("font-semibold")
                ui.label("撤销后使用它的应用会立即无法访问，且无法恢复。").classes("text-sm text-gray-500")

                async def revoke() -> None:
                    confirm.close()
                    try:
                        await off_loop(_revoke, self.state, self.user.id, key_id)
                    except DomainError as exc:
                        ui.notify(exc.message, type="warning")
                    else:
                        ui.notify("密钥已撤销", type="positive")
                    await self.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button("取消", on_click=confirm.close).props("flat")
                    ui.button("撤销", on_click=revoke).props("unelevated color=negative").mark(
                        "revoke-confirm"
                    )
            confirm.open()

        return ask

    async def create(self) -> None:
        self.error.text = ""
        try:
            row, plain = await off_loop(
                _create, self.state, self.user.id, self.name.value or "", int(self.expiry.value or 0)
            )
        except DomainError as exc:
            self.error.text = exc.message.split("：", 1)[-1]
            return
        self.name.value = ""
        self.created.clear()
        with self.created, ui.card().classes("w-full bg-green-50").props("flat bordered").mark("key-created"):
            ui.label(f"密钥“{row.name}”已创建。它只显示这一次，请现在复制保存。").classes("text-sm")
            self._copyable(plain, "new-key", "复制密钥")
            self._copyable(self.base_url, "base-url", "复制 Base URL")
        await self.refresh()

    @staticmethod
    def _copyable(text: str, mark: str, tip: str) -> None:
        with ui.row().classes("w-full items-center no-wrap gap-1"):
            ui.input(value=text).props("outlined dense readonly").classes("grow font-mono").mark(mark)

            def copy() -> None:
                ui.clipboard.write(text)
                ui.notify("已复制", type="positive")

            ui.button(icon="content_copy", on_click=copy).props("flat round dense").tooltip(tip).mark(
                f"{mark}-copy"
            )
