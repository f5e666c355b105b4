"""A server restart under an open chat page, in headless Chromium against real processes (issue 19): the
page is not reloaded by NiceGUI's reconnect; the conversation stays readable with a notice, exports in the
browser, and a new chat starts only when asked."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium.webdriver.common.by import By

from tests.browser.conftest import screenshot
from tests.browser.test_chat_browser import ANSWER, answer_text, choose_model, open_chat, type_and_send, wait
from tests.chat_helpers import add_channel
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, admin_headers, free_port, production_env, run_app
from tests.upstream_server import UpstreamServer

NOTICE = ".restart-notice"


def notice_shown(driver) -> bool:
    return bool(driver.execute_script(f"return document.querySelector('{NOTICE}')?.getClientRects().length"))


def notice_button(driver, text: str):
    return driver.find_element(
        By.XPATH, f"//div[contains(@class,'restart-notice')]//button[.//span[text()='{text}']]"
    )


def test_a_restart_keeps_the_conversation_on_screen_with_a_notice(
    driver, tmp_path: Path, upstream: UpstreamServer
) -> None:
    env = production_env(tmp_path / "data", GUEST_RPM="1000", APP_PORT=str(free_port()), **TEST_TIMEOUTS)
    with run_app(env, log_path=tmp_path / "before.log") as app:
        with httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http:
            headers = admin_headers(http)
            add_channel(http, headers, base_url=upstream.base_url("ok"), model="plain-model", name="Plain")
        open_chat(driver, app)
        choose_model(driver, "plain-model")
        type_and_send(driver, "kept through the restart")
        wait(driver).until(lambda d: ANSWER in answer_text(d))
        driver.execute_script("window.restartMark = 'same page'")  # gone if the page were reloaded
        assert not notice_shown(driver), "hidden while the server is there"

    with run_app(env, log_path=tmp_path / "after.log") as app:  # the same address, a new process
        wait(driver).until(notice_shown)
        assert driver.execute_script("return window.restartMark") == "same page", "not reloaded"
        assert [el.text for el in driver.find_elements(By.CSS_SELECTOR, ".bubble.user")] == [
            "kept through the restart"
        ]
        assert ANSWER in answer_text(driver)
        assert "服务已重启" in driver.find_element(By.CSS_SELECTOR, NOTICE).text
        screenshot(driver, "chat-after-restart")

        # the export works without the server: the file the browser would save
        driver.execute_script(  # (the page's CSP keeps fetch() off blob: URLs: the Blob is read directly)
            "const made = URL.createObjectURL;"
            "URL.createObjectURL = (blob) => { window.exportedBlob = blob; return made(blob); };"
            "HTMLAnchorElement.prototype.click = function () { window.exported = this.download; };"
        )
        notice_button(driver, "导出文本").click()
        wait(driver).until(lambda d: d.execute_script("return window.exported"))
        exported = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.exportedBlob.text().then((text) => done([window.exported, text]));"
        )
        assert exported[0] == "pyaichat-conversation.md"
        assert exported[1].startswith("## 用户\n\nkept through the restart\n\n## 助手\n\n")
        assert ANSWER in exported[1]
        assert driver.execute_script("return window.restartMark") == "same page", "still the same page"

        notice_button(driver, "新对话").click()  # asked for: a new page from the new process, no prompt
        wait(driver).until(lambda d: d.execute_script("return window.restartMark") is None)
        open_chat(driver, app)
        assert not driver.find_elements(By.CSS_SELECTOR, ".bubble.user")
        assert not notice_shown(driver)
        choose_model(driver, "plain-model")
        type_and_send(driver, "a new chat on the new process")
        wait(driver).until(lambda d: ANSWER in answer_text(d))
