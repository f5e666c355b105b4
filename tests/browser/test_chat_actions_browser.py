"""Issue 19 in headless Chromium: message actions, export, math and wide content on a phone, Esc, and the
controls' English names. Screenshots land in tests/browser/screenshots/."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import chromium, screenshot
from tests.browser.test_chat_browser import (
    ANSWER,
    STOP,
    answer_text,
    choose_model,
    open_chat,
    type_and_send,
    wait,
)
from tests.helpers import RunningApp
from tests.upstream_server import UpstreamServer

READY = "//button[.//i[text()='arrow_upward']]"


def named(driver, name: str) -> list:
    """The visible buttons whose accessible name is ``name``."""
    return [
        b for b in driver.find_elements(By.CSS_SELECTOR, f"button[aria-label='{name}']") if b.is_displayed()
    ]


def hover_click(driver, name: str, index: int) -> None:
    """Hovers over and clicks the ``index``-th visible button named ``name``; found again if a re-render
    replaced it in between."""
    from selenium.webdriver import ActionChains

    def click(d) -> bool:
        buttons = named(d, name)
        if len(buttons) <= index:
            return False
        ActionChains(d).move_to_element(buttons[index]).click().perform()
        return True

    wait(driver).until(click)


def answered(driver, count: int) -> None:
    wait(driver).until(EC.presence_of_element_located((By.XPATH, READY)))
    wait(driver).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "button[aria-label='重新生成']")) >= count
    )


def test_regenerate_edit_delete_and_export(driver, browser_app: RunningApp) -> None:
    downloads = Path(tempfile.mkdtemp(prefix="pyaichat-downloads-"))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_chat(driver, browser_app)
    assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
    choose_model(driver, "plain-model")
    type_and_send(driver, "first question")
    answered(driver, 1)
    screenshot(driver, "chat-actions")
    hover_click(driver, "重新生成", 0)
    wait(driver).until(
        lambda d: "2/2" in " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".answer-index"))
    )
    answered(driver, 1)
    hover_click(driver, "上一个回答", 0)
    wait(driver).until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, ".answer-index") if e.is_displayed()] == ["1/2"]
        )
    )
    assert ANSWER in answer_text(driver)
    screenshot(driver, "chat-regenerated")

    type_and_send(driver, "second question")
    answered(driver, 2)
    hover_click(driver, "编辑", 1)
    box = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".edit-box textarea")))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("second, edited")
    screenshot(driver, "chat-editing")
    driver.find_element(By.XPATH, "//button[.//span[text()='保存并发送']]").click()
    wait(driver).until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, ".bubble.user") if e.is_displayed()]
            == ["first question", "second, edited"]
        )
    )
    answered(driver, 2)

    hover_click(driver, "删除", 1)
    wait(driver).until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, ".bubble.user") if e.is_displayed()]
            == ["first question"]
        )
    )

    driver.find_element(By.CSS_SELECTOR, "button[aria-label='导出']").click()
    wait(driver).until(lambda _: [p for p in downloads.glob("*.md")])
    exported = next(downloads.glob("*.md")).read_text(encoding="utf-8")
    assert "first question" in exported and ANSWER in exported and "second, edited" not in exported


@pytest.mark.parametrize("dark", [False, True])
def test_math_code_and_tables_fit_a_phone(driver, browser_app: RunningApp, dark: bool) -> None:
    driver.set_window_size(375, 812)
    open_chat(driver, browser_app)
    if dark:
        driver.find_element(By.XPATH, "//button[.//i[text()='dark_mode']]").click()
    choose_model(driver, "rich-model")
    type_and_send(driver, "show me everything")
    wait(driver).until(lambda d: "end." in answer_text(d))
    wait(driver).until(EC.presence_of_element_located((By.XPATH, READY)))
    assert len(driver.find_elements(By.CSS_SELECTOR, ".answer .katex math")) >= 2, "inline and display math"
    assert driver.find_elements(By.CSS_SELECTOR, ".answer .katex-display math[display='block']")
    assert driver.find_element(By.CSS_SELECTOR, ".answer .code-lang").text == "python"
    heading = driver.find_element(By.CSS_SELECTOR, ".answer h1")
    assert float(heading.value_of_css_property("font-size").removesuffix("px")) <= 24
    assert driver.execute_script("return window.__xss === undefined")
    assert not driver.find_elements(By.CSS_SELECTOR, ".answer a[href^='javascript']")
    width = driver.execute_script("return document.documentElement.clientWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width, "no sideways scroll"
    code = driver.find_element(By.CSS_SELECTOR, ".answer pre")
    assert driver.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", code), (
        "the long line scrolls inside its block"
    )
    bubble = driver.find_element(By.CSS_SELECTOR, ".bubble.assistant")
    assert bubble.rect["x"] + bubble.rect["width"] <= width + 1
    screenshot(driver, "chat-rich-phone-dark" if dark else "chat-rich-phone")
    driver.set_window_size(1440, 900)
    screenshot(driver, "chat-rich-desktop-dark" if dark else "chat-rich-desktop")


def test_escape_stops_and_slash_focuses(driver, browser_app: RunningApp, upstream: UpstreamServer) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "slow-model")
    before = len(upstream.ends_of("slow-model"))
    type_and_send(driver, "a long answer")
    wait(driver).until(lambda d: "w2" in answer_text(d))
    driver.find_element(By.CSS_SELECTOR, "textarea").send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: "已停止生成" in d.find_element(By.CSS_SELECTOR, ".bubble.assistant").text)
    wait(driver).until(lambda _: upstream.ends_of("slow-model")[before:])
    assert not driver.find_elements(By.XPATH, STOP)
    driver.find_element(By.CSS_SELECTOR, ".brand").click()  # focus away from the box
    driver.switch_to.active_element.send_keys("/")
    wait(driver).until(lambda d: d.switch_to.active_element.tag_name == "textarea")
    assert driver.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value") == ""


def test_controls_have_their_english_names(browser_app: RunningApp) -> None:
    english = chromium()
    driver = next(english)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": "en-US,en;q=0.9"}}
        )
        open_chat(driver, browser_app)
        assert driver.execute_script("return document.documentElement.lang") == "en-US"
        choose_model(driver, "plain-model")
        names = {b.get_attribute("aria-label") for b in driver.find_elements(By.CSS_SELECTOR, "button")}
        assert {"New chat", "Send", "Export", "Dark mode"} <= names, names
        assert driver.find_element(By.XPATH, "//button[.//span[text()='Sign in']]")
        type_and_send(driver, "hello")
        wait(driver).until(lambda d: ANSWER in answer_text(d))
        wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label='Regenerate']"))
        names = {b.get_attribute("aria-label") for b in driver.find_elements(By.CSS_SELECTOR, "button")}
        assert {"Copy", "Regenerate", "Edit", "Delete"} <= names, names
        screenshot(driver, "chat-english")
    finally:
        english.close()
