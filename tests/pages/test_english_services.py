"""What the services say, on the admin pages of a visitor who chose English: a channel's field rules and
the notes on its base URL, and the call log's deleted user (test_english.py has the pages' own words)."""

from __future__ import annotations

from collections.abc import Callable

from nicegui.testing import User
from sqlmodel import Session, select

from app.models import Channel, utcnow
from services.logs import CallRecord
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state, sign_in_admin
from tests.pages.test_chat import send
from tests.pages.test_english import chinese_on_the_page, switch_to_english


async def test_channel_dialog_rules_and_notes_in_english(user: User) -> None:
    await sign_in_admin(user)
    await switch_to_english(user, "/admin/channels")
    user.find(marker="add-channel").click()
    user.find(marker="ch-base-url").type("http://ollama:11434")
    await user.should_see(
        "No path given: /v1 is added, as OpenAI-compatible servers expect", retries=SEE_RETRIES
    )
    user.find(marker="ch-base-url").clear().type("ftp://nope")
    user.find(marker="ch-save").click()
    await user.should_see(
        "Base URL: must start with http:// or https://, e.g. https://api.openai.com/v1", retries=SEE_RETRIES
    )
    await user.should_see("Models: enter at least one model")
    assert chinese_on_the_page(user) == []


def _record_a_call(*, user_id: int | None, channel_id: int | None, error: str | None = None) -> None:
    state = app_state()
    state.log_writer.record(
        CallRecord(
            user_id=user_id,
            username="gone@example.com" if user_id else None,
            ip_address="10.2.2.2",
            channel_id=channel_id,
            model_id="gone-model",
            prompt_tokens=1,
            completion_tokens=1,
            created_at=utcnow(),
            status="upstream_error" if error else "ok",
            tokens_estimated=False,
            duration_ms=1,
            error=error,
        )
    )
    assert state.log_writer.flush()


async def test_logs_page_names_a_deleted_user_in_english(user: User) -> None:
    _record_a_call(user_id=987_654_321, channel_id=None)  # an account deleted since (no such user)
    await sign_in_admin(user)
    await switch_to_english(user, "/admin/logs")
    table = user.find(marker="log-table").elements.pop()
    await wait_until_async(lambda: bool(getattr(table, "rows", [])), what="the call listed")
    assert [row["user"] for row in table.rows if row["model"] == "gone-model"] == ["Deleted user"]
    assert [row["user_key"] for row in table.rows if row["model"] == "gone-model"] == ["987654321"]


async def test_dashboard_names_a_deleted_channel_and_a_reason_in_english(user: User) -> None:
    _record_a_call(user_id=None, channel_id=424_242, error="http_5xx")  # a channel deleted since
    await sign_in_admin(user)
    await switch_to_english(user, "/admin/dashboard")
    await user.should_see(marker="table-channels", retries=SEE_RETRIES)
    table = user.find(marker="table-channels").elements.pop()
    assert "#424242 (deleted)" in [row["name"] for row in getattr(table, "rows", [])]
    errors = user.find(marker="table-errors").elements.pop()
    assert "http_5xx: The upstream server failed" in [row["reason"] for row in getattr(errors, "rows", [])]
    assert chinese_on_the_page(user) == []


async def test_a_channel_test_reports_in_english(user: User, add_model: Callable[..., str]) -> None:
    add_model("plainonly", name="Plain only")  # answers plain calls, not streamed ones
    await sign_in_admin(user)
    await switch_to_english(user, "/admin/channels")
    user.find(marker="ch-test").click()
    await user.should_see(marker="ch-last-error", content="The streamed call failed: ", retries=SEE_RETRIES)
    assert chinese_on_the_page(user) == []


async def test_a_channel_last_error_in_the_visitor_language(
    user: User, add_model: Callable[..., str]
) -> None:
    """A stored reason code in words for each visitor; an older version's Chinese text as stored."""
    add_model("error500", model="coded-model", name="Coded")
    add_model("ok", model="old-model", name="Old")
    state = app_state()
    with Session(state.engine) as session:
        for row in session.exec(select(Channel)).all():
            row.last_error = {"Coded": "http_5xx:500", "Old": "非流式调用失败：HTTP 502"}[row.name]
            row.last_error_at = utcnow()
            session.add(row)
        session.commit()

    def errors_shown() -> list[str]:
        return sorted(label.text for label in user.find(marker="ch-last-error").elements)

    await sign_in_admin(user)
    await user.open("/admin/channels")
    await user.should_see(marker="ch-last-error", content="HTTP 500: 上游服务器出错", retries=SEE_RETRIES)
    assert errors_shown() == ["HTTP 500: 上游服务器出错", "非流式调用失败：HTTP 502"]
    await switch_to_english(user, "/admin/channels")
    await user.should_see(
        marker="ch-last-error", content="HTTP 500: The upstream server failed", retries=SEE_RETRIES
    )
    assert errors_shown() == ["HTTP 500: The upstream server failed", "非流式调用失败：HTTP 502"]


async def test_the_chat_page_says_why_a_model_failed_in_english(
    user: User, add_model: Callable[..., str]
) -> None:
    add_model("error500", model="broken")
    await switch_to_english(user, "/")
    await send(user, "will fail")
    await user.should_see(marker="error-kind", retries=SEE_RETRIES)
    [kind] = user.find(marker="error-kind").elements
    assert kind.text == "The model service cannot be reached right now; try again later."  # http_5xx
