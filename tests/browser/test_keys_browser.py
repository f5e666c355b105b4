"""The personal API key journey and the password change in headless Chromium: sign in, open "API 密钥"
from the account menu, create a key (shown once, with the base URL), use it from outside, see it
listed as used, revoke it; then change the password from "修改密码"."""

from __future__ import annotations

import uuid

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot, settled
from tests.browser.test_chat_browser import open_chat, wait
from tests.helpers import HANG_SECONDS, RunningApp, wait_until
from tests.upstream_server import ANSWER_WORDS

ANSWER = "".join(ANSWER_WORDS)


def sign_in(driver, app: RunningApp, password: str = "password-1") -> str:
    email = f"keys-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(
        f"{app.base_url}/api/auth/register", timeout=HANG_SECONDS, json={"email": email, "password": password}
    )
    driver.get(app.base_url + "/login")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[type=email]")))
    driver.find_element(By.CSS_SELECTOR, "input[type=email]").send_keys(email)
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password, Keys.ENTER)
    wait(driver).until(EC.url_to_be(app.base_url + "/"))
    open_chat(driver, app)
    return email


def menu_item(driver, label: str) -> None:
    driver.find_element(By.XPATH, "//button[.//i[text()='account_circle']]").click()
    item = f"//div[contains(@class,'q-menu')]//div[contains(@class,'q-item') and normalize-space()='{label}']"
    wait(driver).until(EC.element_to_be_clickable((By.XPATH, item))).click()


def field(driver, label: str):
    label_xpath = f"//div[contains(@class,'q-field__label') and text()='{label}']"
    return wait(driver).until(EC.element_to_be_clickable((By.XPATH, f"//label[.{label_xpath}]//input")))


def button(driver, text: str):
    xpath = f"//div[contains(@class,'q-dialog')]//button[.//span[normalize-space()='{text}']]"
    wait(driver).until(settled)  # a click on a dialog still appearing can land on its backdrop
    return wait(driver).until(EC.element_to_be_clickable((By.XPATH, xpath)))


def input_values(driver) -> list[str]:
    return list(driver.execute_script("return [...document.querySelectorAll('input')].map(i => i.value)"))


def dialog_text(driver) -> str:
    """The open dialogs' text, read in one script (a dialog redrawn meanwhile leaves no stale element)."""
    script = "return [...document.querySelectorAll('.q-dialog')].map(d => d.innerText).join(' ')"
    return str(driver.execute_script(script))


def test_key_journey(driver, browser_app: RunningApp) -> None:
    sign_in(driver, browser_app)
    menu_item(driver, "API 密钥")
    wait(driver).until(lambda d: "还没有密钥" in dialog_text(d))
    field(driver, "名称").send_keys("NextChat on my laptop")
    button(driver, "创建密钥").click()
    wait(driver).until(lambda d: any(v.startswith("sk-") for v in input_values(d)))
    key = next(v for v in input_values(driver) if v.startswith("sk-"))
    assert f"{browser_app.base_url}/v1" in input_values(driver)  # the ready base URL
    assert "只显示这一次" in dialog_text(driver)
    # the list below redraws just after the key is shown
    wait(driver).until(lambda d: "还没有密钥" not in dialog_text(d) and key[:10] in dialog_text(d))
    assert "NextChat on my laptop" in dialog_text(driver)
    assert key not in dialog_text(driver).replace(key[:10] + "…", "")  # listed by its prefix only
    screenshot(driver, "keys-created")

    sdk_headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.post(
        f"{browser_app.base_url}/v1/chat/completions",
        headers=sdk_headers,
        timeout=HANG_SECONDS,
        json={"model": "plain-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == ANSWER
    wait_until(
        lambda: httpx.get(
            f"{browser_app.base_url}/api/keys", headers=sdk_headers, timeout=HANG_SECONDS
        ).json()[0]["last_used_at"],
        what="last_used_at",
    )
    driver.find_element(By.CSS_SELECTOR, ".q-dialog button .q-icon").click()  # the close button
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-dialog")))
    menu_item(driver, "API 密钥")
    wait(driver).until(lambda d: "NextChat on my laptop" in dialog_text(d))
    assert "最近使用：从未" not in dialog_text(driver)
    assert not any(v.startswith("sk-") for v in input_values(driver))  # never shown again
    screenshot(driver, "keys-listed")

    driver.find_element(By.XPATH, "//div[contains(@class,'q-dialog')]//button[.//i[text()='delete']]").click()
    wait(driver).until(lambda d: "撤销后使用它的应用会立即无法访问" in dialog_text(d))
    button(driver, "撤销").click()
    wait(driver).until(lambda d: "还没有密钥" in dialog_text(d))
    refused = httpx.get(f"{browser_app.base_url}/v1/models", headers=sdk_headers, timeout=HANG_SECONDS)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "invalid_api_key"


def test_password_change_from_the_account_menu(driver, browser_app: RunningApp) -> None:
    email = sign_in(driver, browser_app)
    elsewhere = httpx.post(
        f"{browser_app.base_url}/api/auth/login",
        timeout=HANG_SECONDS,
        json={"email": email, "password": "password-1"},
    ).json()["access_token"]
    menu_item(driver, "修改密码")
    field(driver, "原密码").send_keys("password-1")
    field(driver, "新密码（至少 8 位）").send_keys("password-2")
    field(driver, "确认新密码").send_keys("password-3")
    button(driver, "确认修改").click()
    wait(driver).until(lambda d: "两次输入的新密码不一致" in dialog_text(d))
    field(driver, "确认新密码").send_keys(Keys.BACKSPACE, "2")
    button(driver, "确认修改").click()
    wait(driver).until(lambda d: "密码已修改" in d.page_source)
    me = httpx.get(
        f"{browser_app.base_url}/api/auth/me",
        headers={"Authorization": f"Bearer {elsewhere}"},
        timeout=HANG_SECONDS,
    )
    assert me.status_code == 401  # the other session ended
    driver.refresh()  # this one goes on, with its fresh token
    open_chat(driver, browser_app)
    assert driver.find_elements(By.XPATH, "//button[.//i[text()='account_circle']]")
    login = httpx.post(
        f"{browser_app.base_url}/api/auth/login",
        timeout=HANG_SECONDS,
        json={"email": email, "password": "password-2"},
    )
    assert login.status_code == 200
