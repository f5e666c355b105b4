"""The admin journey in headless Chromium: sign in, add a channel, see the dashboard charts drawn."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot, shown_dialog
from tests.browser.test_chat_browser import wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, wait_until
from tests.upstream_server import UpstreamServer


def test_admin_signs_in_adds_a_channel_and_sees_charts(
    driver,
    browser_app: RunningApp,
    upstream: UpstreamServer,
) -> None:
    driver.get(browser_app.base_url + "/admin")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(browser_app.base_url + "/admin/dashboard"))

    driver.get(browser_app.base_url + "/admin/channels")
    wait(driver).until(EC.element_to_be_clickable((By.XPATH, "//button[.//span[text()='添加渠道']]"))).click()
    dialog = shown_dialog(driver)
    fields = dialog.find_elements(By.CSS_SELECTOR, "input, textarea")  # name, URL, key, models
    values = ["Browser Channel", upstream.base_url("ok"), "sk-browser-key-987654", "browser-model"]
    for field, value in zip(fields, values, strict=False):
        field.send_keys(value)
    dialog.find_element(By.XPATH, ".//button[.//span[text()='保存']]").click()
    wait(driver).until(lambda d: "Browser Channel" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    assert "sk-b…7654" in driver.find_element(By.CSS_SELECTOR, ".q-page").text
    assert "sk-browser-key-987654" not in driver.page_source
    screenshot(driver, "admin-channels")

    for _ in range(3):  # calls on the new model, so the charts have data
        answer = httpx.post(
            f"{browser_app.base_url}/api/chat/completions",
            timeout=HANG_SECONDS,
            json={"model": "browser-model", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200
    token = httpx.post(
        f"{browser_app.base_url}/api/auth/admin/login",
        timeout=HANG_SECONDS,
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
    ).json()["access_token"]

    def calls_today() -> int:
        stats = httpx.get(
            f"{browser_app.base_url}/api/admin/stats",
            timeout=HANG_SECONDS,
            headers={"Authorization": f"Bearer {token}"},
        )
        return stats.json()["calls"]["today"]

    # the log writer commits in batches: wait until the calls are counted
    wait_until(lambda: calls_today() >= 3, poll=0.05, what="3 calls counted")
    driver.get(browser_app.base_url + "/admin/dashboard")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 2)
    assert driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .pielayer")
    assert driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer")
    wait(driver).until(  # the model pie's legend (the other charts have empty pie layers)
        lambda d: (
            "browser-model"
            in d.execute_script(
                "return document.querySelector('.pielayer .slice')"
                "?.closest('.js-plotly-plot')?.textContent || ''"
            )
        )
    )
    screenshot(driver, "admin-dashboard")


def test_audit_page_lists_a_change_made_just_before(
    driver, browser_app: RunningApp, admin_api: httpx.Client, upstream: UpstreamServer
) -> None:
    secret = "sk-audit-browser-key-5f1e2d3c4b"
    created = admin_api.post(
        "/api/admin/channels",
        json={
            "name": "Audit Probe",
            "base_url": upstream.base_url("ok"),
            "api_key": "sk-x-1",
            "model_id": "ap",
        },
    )
    assert created.status_code == 201, created.text
    changed = admin_api.put(
        f"/api/admin/channels/{created.json()['id']}", json={"name": "Audit Probe 2", "api_key": secret}
    )
    assert changed.status_code == 200, changed.text

    driver.get(browser_app.base_url + "/admin/login")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(browser_app.base_url + "/admin/dashboard"))
    wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, "//div[contains(@class,'q-item')][.//div[text()='审计日志']]"))
    ).click()
    wait(driver).until(EC.url_to_be(browser_app.base_url + "/admin/audit"))
    target = f"channel {created.json()['id']} (Audit Probe 2)"
    wait(driver).until(lambda d: target in d.find_element(By.CSS_SELECTOR, ".q-table").text)
    table = driver.find_element(By.CSS_SELECTOR, ".q-table").text
    assert "名称：Audit Probe → Audit Probe 2" in table and "API Key：已修改" in table
    assert "修改渠道" in table and "管理员登录" in table, "the sign-in just made is listed too"
    assert secret not in driver.page_source
    screenshot(driver, "admin-audit")
