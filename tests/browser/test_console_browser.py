"""The console and the chat page in headless Chromium, light and dark, at 1200 px and at 375 px (a phone):
no sideways scrolling of the page, a dark header in dark mode, a "Dark mode" switch on every page, the
side menu closed behind a "Menu" button on phones, links both ways, and the channel table's own tools."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot, shown_dialog, undrawn_icons
from tests.browser.test_chat_browser import wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, wait_until

ADMIN_PAGES = ["channels", "logs", "settings", "ip", "dashboard"]
DARK_MODE = "[aria-label='深色模式'][role=switch]"  # the pages are in Chinese here (--lang=zh-CN)
# the relative luminance of the header's background colour (0 black … 1 white)
HEADER_LUMINANCE = """
const header = document.querySelector(arguments[0]);
const [r, g, b] = getComputedStyle(header).backgroundColor.match(/[\\d.]+/g).map(Number);
return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
"""
OVERFLOW = "return [document.documentElement.scrollWidth, window.innerWidth];"


def phone(driver) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )


def sign_in(driver, app: RunningApp) -> None:
    driver.get(app.base_url + "/admin/login")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(app.base_url + "/admin/dashboard"))


def set_dark(driver, on: bool) -> None:
    switch = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, DARK_MODE)))
    if (switch.get_attribute("aria-checked") == "true") != on:
        switch.click()
        wait(driver).until(
            lambda d: ("body--dark" in d.find_element(By.TAG_NAME, "body").get_attribute("class")) == on
        )


def check_page(driver, name: str, header: str, dark: bool) -> None:
    """The page has loaded (its Dark mode switch is there): no page-wide sideways scroll, header by theme."""
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, DARK_MODE)))
    wait(driver).until(
        lambda d: ("body--dark" in d.find_element(By.TAG_NAME, "body").get_attribute("class")) == dark
    )
    scroll_width, inner_width = driver.execute_script(OVERFLOW)
    screenshot(driver, name)
    assert scroll_width <= inner_width, f"{name}: the page scrolls sideways ({scroll_width} > {inner_width})"
    assert undrawn_icons(driver) == [], f"{name}: icons the icon font lacks"
    luminance = driver.execute_script(HEADER_LUMINANCE, header)
    assert (luminance < 0.25) if dark else (luminance > 0.75), f"{name}: header luminance {luminance:.2f}"


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_in_both_themes_and_on_a_phone(
    driver, browser_app: RunningApp, theme: str, width: str
) -> None:
    dark = theme == "dark"
    if width == "phone":
        phone(driver)
    driver.get(browser_app.base_url + "/admin/login")
    set_dark(driver, dark)
    back = driver.find_element(By.CSS_SELECTOR, "a[href='/']")  # the way back to the chat
    assert back.is_displayed()
    scroll_width, inner_width = driver.execute_script(OVERFLOW)
    screenshot(driver, f"console-login-{theme}-{width}")
    assert scroll_width <= inner_width
    sign_in(driver, browser_app)
    for page in ADMIN_PAGES:
        driver.get(f"{browser_app.base_url}/admin/{page}")
        check_page(driver, f"console-{page}-{theme}-{width}", ".q-header", dark)
        menu = driver.find_element(By.CSS_SELECTOR, "[aria-label='菜单']")
        drawer = driver.find_element(By.CSS_SELECTOR, ".q-drawer")
        if width == "phone":  # closed at first, opened by the Menu button
            assert menu.is_displayed()
            assert drawer.rect["x"] + drawer.rect["width"] <= 0, "the menu covers the page on load"
            menu.click()
            wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, ".q-drawer").rect["x"] >= 0)
            screenshot(driver, f"console-{page}-{theme}-{width}-menu")
        else:
            assert not menu.is_displayed() and drawer.rect["x"] >= 0
        assert driver.find_element(By.CSS_SELECTOR, "[aria-label='聊天']")  # the link to the chat
    driver.get(browser_app.base_url + "/")
    check_page(driver, f"chat-{theme}-{width}", ".app-header", dark)
    console = driver.find_element(By.CSS_SELECTOR, "a[href='/admin']")
    assert console.is_displayed() and console.text == "管理后台"


def test_channel_search_test_all_keeps_results_in_the_table(driver, browser_app: RunningApp) -> None:
    sign_in(driver, browser_app)
    driver.get(browser_app.base_url + "/admin/channels")
    search = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".q-card input")))
    search.send_keys("plain-model", Keys.ENTER)
    wait(driver).until(lambda d: "共 1 个渠道" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    assert "Plain Model" in driver.find_element(By.CSS_SELECTOR, ".q-page").text
    driver.find_element(By.XPATH, "//button[.//span[text()='测试本页全部']]").click()
    wait(driver).until(lambda d: "✓ 通过" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    wait(driver).until(lambda d: "1 / 1 个通过" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    screenshot(driver, "console-channels-tested")
    assert not driver.find_elements(By.CSS_SELECTOR, ".q-notification"), "a result is not a toast"

    driver.find_element(By.XPATH, "//button[.//span[text()='添加渠道']]").click()
    dialog = shown_dialog(driver)
    dialog.find_elements(By.CSS_SELECTOR, "input")[1].send_keys("ftp://nope")  # the name stays empty
    dialog.find_element(By.XPATH, ".//button[.//span[text()='保存']]").click()
    wait(driver).until(lambda d: "渠道名称：不能为空" in d.find_element(By.CSS_SELECTOR, ".q-dialog").text)
    text = driver.find_element(By.CSS_SELECTOR, ".q-dialog").text
    assert "Base URL：必须以 http:// 或 https:// 开头" in text and "API Key：不能为空" in text
    assert "模型：至少填写一个模型" in text
    assert len(driver.find_elements(By.CSS_SELECTOR, ".q-dialog .q-field--error")) >= 3, (
        "marked on the fields"
    )
    screenshot(driver, "console-channel-dialog-errors")


def test_logs_header_sort_and_click_to_filter(driver, browser_app: RunningApp, admin_api) -> None:
    answer = httpx.post(  # a guest's call
        f"{browser_app.base_url}/api/chat/completions",
        json={"model": "plain-model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=HANG_SECONDS,
    )
    assert answer.status_code == 200
    wait_until(
        lambda: admin_api.get("/api/admin/logs").json()["total"] >= 1, poll=0.05, what="the call logged"
    )
    sign_in(driver, browser_app)
    driver.get(browser_app.base_url + "/admin/logs")
    first_ip = "return document.querySelectorAll('.q-table tbody tr:first-child td a')[0]?.textContent"
    wait(driver).until(lambda d: d.execute_script(first_ip))
    ip = driver.execute_script(first_ip)
    # a click on the IP cell of the first row
    driver.execute_script("document.querySelectorAll('.q-table tbody tr:first-child td a')[0].click()")
    wait(driver).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('input')].some(i => i.value === arguments[0])", ip
        )
    )
    driver.find_element(By.XPATH, "//th[contains(., '耗时 ms')]").click()
    wait(driver).until(lambda d: "耗时（短→长）" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    driver.find_element(By.XPATH, "//th[contains(., '耗时 ms')]").click()
    wait(driver).until(lambda d: "耗时（长→短）" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    screenshot(driver, "console-logs-sorted-filtered")
