"""The admin console with NiceGUI's simulated user: sign-in, every page, and refusing everyone else."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from app.models import BlockedIP, Channel, ChannelCreate
from services.settings import read_settings
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state, record_calls, set_limits, sign_in_admin
from tests.upstream_server import UpstreamServer


async def sign_in(user: User) -> None:
    await sign_in_admin(user)


async def test_pages_refuse_anyone_but_the_admin(user: User) -> None:
    for path in ("/admin/dashboard", "/admin/channels", "/admin/logs", "/admin/ip", "/admin/settings"):
        await user.open(path)
        await user.should_see("管理员登录")
    user.find(marker="username").type("admin")
    user.find(marker="password").type("wrong-password")
    user.find(marker="submit").click()
    await user.should_see("用户名或密码错误", retries=SEE_RETRIES)


async def test_user_login_is_not_an_admin_login(user: User) -> None:
    from pages.session import ADMIN_TOKEN_KEY, keep_token
    from pages.session import sign_in as sign_in_user
    from services.auth import issue_user_token, register_user

    state = app_state()
    with Session(state.engine) as session:
        account = register_user(session=session, email="u1@example.com", password="password-1")
    from datetime import timedelta

    await user.open("/")
    token = issue_user_token(account, secret=state.secret_key, lifetime=timedelta(hours=1))
    sign_in_user(state, token)
    keep_token(state, ADMIN_TOKEN_KEY, token)  # a user token where the admin token should be
    await user.open("/admin/dashboard")
    await user.should_see("管理员登录")


async def test_dashboard_shows_numbers_and_charts(user: User) -> None:
    models = ("m-a", "m-a", "m-b")
    record_calls(3, lambda i: {"model_id": models[i], "prompt_tokens": 3, "completion_tokens": 4})
    await sign_in(user)
    await user.should_see(marker="calls", retries=SEE_RETRIES)
    value = user.find(marker="calls-value").elements.pop()
    assert getattr(value, "text", None) == "3"
    assert user.find(marker="success-rate-value").elements.pop().text == "100.0%"  # type: ignore[attr-defined]
    pie = user.find(marker="chart-models").elements.pop()
    assert isinstance(pie, ui.plotly)
    assert pie.figure["data"][0]["labels"] == ["m-a", "m-b"] and pie.figure["data"][0]["values"] == [2, 1]
    traffic = user.find(marker="chart-traffic").elements.pop()
    assert isinstance(traffic, ui.plotly)
    calls, tokens = traffic.figure["data"]
    assert list(calls["y"])[-1] == 3 and len(calls["y"]) == 7, "a one-day range shows its week"
    assert list(tokens["y"])[-1] == 21
    for marker in ("chart-problems", "chart-latency", "table-channels", "table-ips"):
        assert user.find(marker=marker).elements, marker
    timer = user.find(marker="auto-refresh").elements.pop()
    assert isinstance(timer, ui.timer) and timer.interval == 30

    # 7 days: the numbers load again for the range
    before = user.find(marker="calls").elements.pop()
    toggle = user.find(marker="range-preset").elements.pop()
    assert isinstance(toggle, ui.toggle)
    toggle.set_value("7d")
    await wait_until_async(lambda: before.is_deleted, what="the 7-day numbers")
    assert user.find(marker="calls-value").elements.pop().text == "3"  # type: ignore[attr-defined]


async def test_dashboard_custom_range_is_checked_on_the_page(user: User) -> None:
    await sign_in(user)
    await user.should_see(marker="calls", retries=SEE_RETRIES)
    toggle = user.find(marker="range-preset").elements.pop()
    assert isinstance(toggle, ui.toggle)
    toggle.set_value("custom")
    await user.should_see(marker="range-start", retries=SEE_RETRIES)
    start = user.find(marker="range-start").elements.pop()
    end = user.find(marker="range-end").elements.pop()
    assert isinstance(start, ui.input) and isinstance(end, ui.input)
    assert start.value and end.value, "the custom range starts as the last 7 days"
    shown = user.find(marker="calls").elements.pop()
    for first, last, field, words in (
        ("2026-11-10", "2026-11-01", end, "结束日期不能早于开始日期"),
        ("2024-01-01", "2026-11-01", end, "日期范围最多 400 天"),
        ("11/01/2026", "2026-11-01", start, "不是有效日期"),
    ):
        start.set_value(first)
        end.set_value(last)
        user.find(marker="range-apply").click()
        await wait_until_async(lambda f=field, w=words: w in (f.error or ""), what=words)
        assert not shown.is_deleted, "nothing was loaded"
    start.set_value("2026-11-01")
    end.set_value("2026-11-07")
    user.find(marker="range-apply").click()
    await wait_until_async(lambda: shown.is_deleted, what="the custom range loaded")
    assert start.error is None and end.error is None
    await user.should_see("2026-11-01 ~ 2026-11-07")


async def test_channels_add_edit_toggle_delete(user: User, upstream: UpstreamServer) -> None:
    await sign_in(user)
    await user.open("/admin/channels")
    await user.should_see("还没有渠道")
    user.find(marker="add-channel").click()
    user.find(marker="ch-name").type("Main")
    user.find(marker="ch-base-url").type("ftp://nope")
    user.find(marker="ch-api-key").type("sk-secret-abcdef123456")
    user.find(marker="ch-model").type("gpt-x")
    user.find(marker="ch-save").click()
    await user.should_see("Base URL：必须以 http:// 或 https:// 开头", retries=SEE_RETRIES)
    user.find(marker="ch-base-url").clear().type(upstream.base_url("ok"))
    user.find(marker="ch-save").click()
    await user.should_see("已保存", retries=SEE_RETRIES)
    await user.should_see("sk-s…3456", retries=SEE_RETRIES)  # the table reloads after the toast
    await user.should_not_see("sk-secret-abcdef123456")

    user.find(marker="ch-test").click()  # the result stays in the table's row
    await user.should_see(marker="ch-last-error", content="连接正常", retries=SEE_RETRIES)
    await user.should_see(marker="ch-test-ok", retries=SEE_RETRIES)

    user.find(marker="ch-edit").click()
    user.find(marker="ch-name").clear().type("Renamed")
    user.find(marker="ch-save").click()
    await user.should_see(marker="ch-row-name", content="Renamed", retries=SEE_RETRIES)
    state = app_state()
    with Session(state.engine) as session:
        [row] = session.exec(select(Channel)).all()
        assert row.name == "Renamed" and state.cipher.decrypt(row.api_key) == "sk-secret-abcdef123456"

    user.find(marker="ch-toggle").elements.pop().set_value(False)
    await user.should_see("已停用", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert session.exec(select(Channel)).one().is_enabled is False

    user.find(marker="ch-delete").click()
    user.find(marker="ch-confirm-delete").click()
    await user.should_see("已删除", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert session.exec(select(Channel)).all() == []


async def test_channel_dialog_models_and_call_url_and_auto_pause(
    user: User, upstream: UpstreamServer
) -> None:
    await sign_in(user)
    await user.open("/admin/channels")
    user.find(marker="add-channel").click()
    user.find(marker="ch-name").type("Many")
    user.find(marker="ch-base-url").type(upstream.base_url("ok") + "/chat/completions")
    await user.should_see("调用地址：" + upstream.base_url("ok") + "/chat/completions", retries=SEE_RETRIES)
    await user.should_see("末尾的 /chat/completions 已去掉", retries=SEE_RETRIES)
    user.find(marker="ch-api-key").type("sk-many-abcdef123456")
    user.find(marker="ch-model").type("m-one\nm-two\nm-two")
    user.find(marker="ch-headers").type("bad name: x")
    user.find(marker="ch-save").click()
    await user.should_see("模型：模型重复：m-two", retries=SEE_RETRIES)  # every error at once
    await user.should_see("不是合法的 HTTP 头名称", retries=SEE_RETRIES)
    user.find(marker="ch-model").clear().type("m-one, m-two")
    user.find(marker="ch-model-map").type("m-two=vendor/m-two")
    user.find(marker="ch-headers").clear().type("api-key: header-secret-value-1")
    user.find(marker="ch-save").click()
    await user.should_see("已保存", retries=SEE_RETRIES)
    await user.should_see(marker="ch-row-name", content="Many", retries=SEE_RETRIES)
    await user.should_not_see("header-secret-value-1")
    state = app_state()
    with Session(state.engine) as session:
        row = session.exec(select(Channel).where(Channel.name == "Many")).one()
        assert row.models == '["m-one","m-two"]' and row.model_map == '{"m-two":"vendor/m-two"}'
        row.auto_paused, row.consecutive_failures, row.last_error = True, 5, "HTTP 500: 上游服务器出错"
        session.add(row)
        session.commit()
        state.directory.refresher.changed()
    await user.open("/admin/channels")
    await user.should_see(marker="ch-status", content="自动暂停", retries=SEE_RETRIES)
    await user.should_see("连续失败 5 次", retries=SEE_RETRIES)
    await user.should_see(marker="ch-last-error", content="HTTP 500: 上游服务器出错", retries=SEE_RETRIES)
    user.find(marker="ch-resume").click()
    await user.should_see("Many 已恢复", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        row = session.exec(select(Channel).where(Channel.name == "Many")).one()
        assert row.auto_paused is False and row.consecutive_failures == 0


async def test_testing_a_channel_deleted_meanwhile_says_so(user: User, upstream: UpstreamServer) -> None:
    await sign_in(user)
    state = app_state()
    with Session(state.engine) as session:
        data = ChannelCreate(
            name="Gone", base_url=upstream.base_url("ok"), api_key="sk-gone-1234", model_id="g"
        )
        channel = state.directory.create(session=session, data=data, actor=None)
    await user.open("/admin/channels")
    await user.should_see(marker="ch-row-name", content="Gone", retries=SEE_RETRIES)
    with Session(state.engine) as session:  # another admin deletes it
        state.directory.delete(session=session, channel_id=channel.id, actor=None)
    user.find(marker="ch-test").click()
    await user.should_see("Gone：渠道不存在", retries=SEE_RETRIES)
    await user.should_see("还没有渠道", retries=SEE_RETRIES)


async def test_settings_are_saved_and_applied(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/settings")
    await user.should_see("系统设置")
    user.find(marker="guest-rpm").elements.pop().set_value(3)
    user.find(marker="retention-days").elements.pop().set_value(30)
    user.find(marker="register-per-ip-per-hour").elements.pop().set_value(2)
    user.find(marker="settings-save").click()
    await user.should_see("设置已保存并立即生效", retries=SEE_RETRIES)
    state = app_state()
    assert state.system_settings.current().guest_rpm == 3
    assert state.system_settings.current().register_per_ip_per_hour == 2
    with Session(state.engine) as session:
        assert read_settings(session=session, defaults=state.setting_defaults).log_retention_days == 30


async def test_the_default_auto_pause_after_is_a_setting_with_0_for_never(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/settings")
    await user.should_see("系统设置")
    state = app_state()
    field = user.find(marker="auto-pause-after").elements.pop()
    assert field.value == state.system_settings.current().auto_pause_after
    try:
        field.set_value(-3)  # (a decimal is refused as on every number field: test_settings_errors_…)
        user.find(marker="settings-save").click()
        await user.should_see("请先修正标红的项", retries=SEE_RETRIES)
        assert field.props.get("error-message") == "须是 0 到 10,000 之间的整数"
        assert field.value == -3, "the value typed stays"
        assert state.system_settings.current().auto_pause_after == 5, "nothing stored changed"
        field.set_value(0)
        user.find(marker="settings-save").click()
        await user.should_see("设置已保存并立即生效", retries=SEE_RETRIES)
        assert state.system_settings.current().auto_pause_after == 0
        with Session(state.engine) as session:
            assert read_settings(session=session, defaults=state.setting_defaults).auto_pause_after == 0
    finally:
        set_limits(auto_pause_after=5)


async def test_ip_page_adds_validates_and_removes(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/ip")
    await user.should_see("禁用列表为空")
    user.find(marker="ip-address").type("10.0.0.0/33")
    user.find(marker="ip-add").click()
    await user.should_see("不是有效的 CIDR 网段", retries=SEE_RETRIES)
    user.find(marker="ip-address").clear().type("192.168.7.0/24")
    user.find(marker="ip-reason").type("spam")
    user.find(marker="ip-add").click()
    await user.should_see("已禁用 192.168.7.0/24", retries=SEE_RETRIES)
    await user.should_see(marker="ip-rule", retries=SEE_RETRIES)  # the list has the rule, not only the toast
    [rule] = user.find(marker="ip-rule").elements
    assert any("192.168.7.0/24" in getattr(label, "text", "") for label in rule.descendants())
    state = app_state()
    assert state.block_list.match("192.168.7.9") == "192.168.7.0/24"
    user.find(marker="ip-delete").click()
    await user.should_see("已移除", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert session.exec(select(BlockedIP)).all() == []


async def test_logs_page_filters_pages_and_exports(user: User) -> None:
    record_calls(
        25,
        lambda i: {
            "ip_address": f"10.2.0.{i % 2}",
            "model_id": "m-logs",
            "prompt_tokens": i,
            "tokens_estimated": i % 2 == 0,
        },
    )
    await sign_in(user)
    await user.open("/admin/logs")
    await user.should_see("共 25 条 · 第 1 / 2 页", retries=SEE_RETRIES)
    table = user.find(marker="log-table").elements.pop()
    assert len(table.rows) == 20
    user.find(marker="f-ip").type("10.2.0.1")
    user.find(marker="f-apply").click()
    await user.should_see("共 12 条", retries=SEE_RETRIES)
    user.find(marker="f-ip").clear().type("bad ip")
    user.find(marker="f-apply").click()
    await user.should_see("不是有效的 IP 地址", retries=SEE_RETRIES)
    user.find(marker="f-ip").clear().type("10.2.0.0")
    user.find(marker="f-apply").click()
    await user.should_see("共 13 条", retries=SEE_RETRIES)
    user.find(marker="export").click()
    response = await user.download.next()
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert len(text.strip().splitlines()) == 1 + 13


async def test_a_log_too_long_to_count_says_more_than(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from services import log_queries

    monkeypatch.setattr(log_queries, "COUNT_AHEAD", 3)  # counted: the page's 20 and 3 more
    record_calls(25)
    await sign_in(user)
    await user.open("/admin/logs")
    await user.should_see("超过 23 条 · 第 1 / 2+ 页", retries=SEE_RETRIES)


async def test_blocking_everyone_asks_first(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/ip")
    user.find(marker="ip-address").type("0.0.0.0/0")
    user.find(marker="ip-add").click()
    await user.should_see(marker="ip-confirm-all", retries=SEE_RETRIES)
    user.find(marker="ip-confirm-cancel").click()
    await user.should_not_see(marker="ip-confirm-all", retries=SEE_RETRIES)
    state = app_state()
    with Session(state.engine) as session:
        assert session.exec(select(BlockedIP)).all() == []
    user.find(marker="ip-add").click()
    await user.should_see(marker="ip-confirm-all", retries=SEE_RETRIES)
    user.find(marker="ip-confirm-all").click()
    await user.should_see("已禁用 0.0.0.0/0", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        [rule] = session.exec(select(BlockedIP)).all()
    assert rule.ip_address == "0.0.0.0/0"
    with Session(state.engine) as session:
        state.block_list.remove(
            session=session, rule_id=rule.id or 0, actor=None
        )  # the other tests' users pass again


def blur(element: ui.element) -> None:
    for listener_id, listener in list(element._event_listeners.items()):
        if listener.type == "blur":
            element._handle_event({"listener_id": listener_id, "args": None})


async def test_settings_errors_are_words_on_the_field_and_nothing_is_clamped(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/settings")
    await user.should_see("系统设置")
    state = app_state()
    before = state.system_settings.current().guest_rpm
    guest = user.find(marker="guest-rpm").elements.pop()
    guest.set_value(0)
    blur(guest)  # what the browser sends when the field is left (where NiceGUI would clamp)
    user.find(marker="retention-days").elements.pop().set_value(None)
    rpm = user.find(marker="user-rpm").elements.pop()
    rpm.set_value(2.5)
    blur(rpm)
    user.find(marker="settings-save").click()
    await user.should_see("请先修正标红的项", retries=SEE_RETRIES)
    assert guest.value == 0, "the value typed stays (no silent clamping to the minimum)"
    assert guest.props.get("error-message") == "须是 1 到 1,000,000 之间的整数"
    assert user.find(marker="retention-days").elements.pop().props.get("error-message") == "不能为空"
    assert rpm.value == 2.5 and rpm.props.get("error-message") == "须是 1 到 1,000,000 之间的整数"
    await user.should_not_see("guest_rpm")
    assert state.system_settings.current().guest_rpm == before, "nothing saved while a field is wrong"


async def test_channels_search_filter_sort_pages_and_bulk(user: User, upstream: UpstreamServer) -> None:
    state = app_state()
    with Session(state.engine) as session:
        for n in range(1, 26):
            data = ChannelCreate(
                name=f"Ch {n:02d}",
                base_url=upstream.base_url("ok") if n != 7 else "https://seven.example.org/v1",
                api_key="sk-bulk-1234567",
                model_id=f"model-{n}",
                is_enabled=n % 5 != 0,
            )
            state.directory.create(session=session, data=data, actor=None)
    await sign_in(user)
    await user.open("/admin/channels")
    await user.should_see("共 25 个渠道 · 第 1 / 2 页", retries=SEE_RETRIES)
    assert len(user.find(marker="ch-row-name").elements) == 20
    user.find(marker="ch-page-size").elements.pop().set_value(50)
    await user.should_see("共 25 个渠道 · 第 1 / 1 页", retries=SEE_RETRIES)
    user.find(marker="ch-search").type("seven.example")
    await user.should_see("共 1 个渠道", retries=SEE_RETRIES)
    await user.should_see(marker="ch-row-name", content="Ch 07")
    user.find(marker="ch-search").clear()
    user.find(marker="ch-status-filter").elements.pop().set_value("disabled")
    await user.should_see("共 5 个渠道", retries=SEE_RETRIES)
    user.find(marker="ch-sort").elements.pop().set_value("-id")

    def names() -> list[str]:  # in the table's order (the order the labels were made)
        return [label.text for label in sorted(user.find(marker="ch-row-name").elements, key=lambda e: e.id)]

    await wait_until_async(
        lambda: names() == ["Ch 25", "Ch 20", "Ch 15", "Ch 10", "Ch 05"], what="newest first"
    )
    user.find(marker="ch-select-page").elements.pop().set_value(True)
    user.find(marker="ch-bulk-enable").click()
    await user.should_see("已启用 5 个渠道", retries=SEE_RETRIES)
    await user.should_see("没有符合条件的渠道", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert all(row.is_enabled for row in session.exec(select(Channel)).all())
    user.find(marker="ch-status-filter").elements.pop().set_value("")
    user.find(marker="ch-search").type("Ch 2")
    await user.should_see("共 6 个渠道", retries=SEE_RETRIES)  # Ch 02, Ch 20 … Ch 25
    user.find(marker="ch-select-page").elements.pop().set_value(True)
    user.find(marker="ch-bulk-delete").click()
    await user.should_see("删除选中的 6 个渠道？", retries=SEE_RETRIES)
    user.find(marker="ch-confirm-delete").click()
    await user.should_see("已删除 6 个渠道", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert len(session.exec(select(Channel)).all()) == 19


async def test_channel_dialog_shows_every_error_and_the_key_hint(
    user: User, upstream: UpstreamServer
) -> None:
    await sign_in(user)
    await user.open("/admin/channels")
    user.find(marker="add-channel").click()
    user.find(marker="ch-base-url").type("ftp://nope")  # and the name left empty
    user.find(marker="ch-save").click()
    await user.should_see("渠道名称：不能为空", retries=SEE_RETRIES)
    await user.should_see("Base URL：必须以 http:// 或 https:// 开头")
    await user.should_see("模型：至少填写一个模型")
    assert user.find(marker="ch-name").elements.pop().props.get("error-message") == "不能为空"
    assert "error" in user.find(marker="ch-base-url").elements.pop().props
    user.find(marker="ch-name").type("Hinted")
    user.find(marker="ch-base-url").clear().type(upstream.base_url("ok"))
    user.find(marker="ch-api-key").type("sk-hinted-abcdef123456")
    user.find(marker="ch-model").type("h-model")
    user.find(marker="ch-save").click()
    await user.should_see(marker="ch-row-name", content="Hinted", retries=SEE_RETRIES)
    user.find(marker="ch-edit").click()
    key = user.find(marker="ch-api-key").elements.pop()
    assert key.props.get("hint") == "留空则保持不变（当前 sk-h…3456）", (
        "shown under the field, no click needed"
    )
    await user.should_see("调用地址：" + upstream.base_url("ok") + "/chat/completions")


async def test_logs_sort_page_size_pickers_and_click_to_filter(user: User) -> None:
    record_calls(
        60,
        lambda i: {
            "ip_address": f"10.3.0.{i % 3}",
            "model_id": "m-a" if i % 2 else "m-b",
            "prompt_tokens": i,
            "status": "ok" if i % 10 else "upstream_error",
            "error": None if i % 10 else "http_5xx",
            "duration_ms": 1000 + i,
        },
    )
    await sign_in(user)
    await user.open("/admin/logs")
    await user.should_see("共 60 条 · 第 1 / 3 页", retries=SEE_RETRIES)
    user.find(marker="log-page-size").elements.pop().set_value(50)
    await user.should_see("共 60 条 · 第 1 / 2 页", retries=SEE_RETRIES)
    table = user.find(marker="log-table").elements.pop()
    assert len(table.rows) == 50
    user.find(marker="log-sort").elements.pop().set_value("-duration")
    await wait_until_async(
        lambda: [row["duration"] for row in table.rows[:3]] == [1059, 1058, 1057], what="longest first"
    )
    user.find(marker="log-sort").elements.pop().set_value("tokens")
    await wait_until_async(lambda: table.rows[0]["prompt"] == "0", what="fewest tokens first")
    assert table.rows[0]["error"] == "上游服务器出错 (5xx)", "the reason in words"
    # a click on the duration header: Quasar (server-side mode) asks for the order with a request event
    [request] = [key for key, listener in table._event_listeners.items() if listener.type == "request"]
    table._handle_event(
        {"listener_id": request, "args": {"pagination": {"sortBy": "duration", "descending": True}}}
    )
    await wait_until_async(lambda: table.rows[0]["duration"] == 1059, what="longest first")
    assert user.find(marker="log-sort").elements.pop().value == "-duration"
    assert table.pagination == {"rowsPerPage": 0, "rowsNumber": 60, "sortBy": "duration", "descending": True}
    model = user.find(marker="f-model").elements.pop()
    assert set(model.options) >= {"m-a", "m-b"}, "the model picker offers what has calls"
    model.set_value("m-a")
    user.find(marker="f-apply").click()
    await user.should_see("共 30 条", retries=SEE_RETRIES)
    row = next(r for r in table.rows if r["ip"] == "10.3.0.1")
    # the IP cell is a link whose click emits filter_ip with its row (what the browser sends)
    [listener_id] = [key for key, listener in table._event_listeners.items() if listener.type == "filter_ip"]
    table._handle_event({"listener_id": listener_id, "args": row})
    await user.should_see("共 10 条", retries=SEE_RETRIES)
    assert user.find(marker="f-ip").elements.pop().value == "10.3.0.1"


@pytest.mark.parametrize(
    ("headers", "wanted"),
    [
        (
            {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"},
            True,
        ),
        ({"user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148 Safari/604.1"}, False),
        ({"user-agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120.0 Mobile Safari/537.36"}, False),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "save-data": "on"}, False),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "save-data": "off"}, True),
        ({}, True),
    ],
)
def test_the_sign_in_page_runs_the_charts_ahead_only_on_a_desktop_without_a_data_saver(
    headers: dict[str, str], wanted: bool
) -> None:
    """The sign-in page's warm-up of plotly.js holds the page's main thread (0.8 s on a desktop, several
    times that on a phone): skipped on phones and for data savers (``Save-Data: on``)."""
    from starlette.datastructures import Headers

    from pages.admin.login import warm_up_wanted

    assert warm_up_wanted(Headers(headers=headers)) is wanted
