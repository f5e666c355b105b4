"""The admin's users journey in headless Chromium: create, find, disable, temporary password, own RPM,
delete; and the chat page of a guest while guests are switched off."""

from __future__ import annotations

import uuid

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot, settled
from tests.browser.test_chat_browser import wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp

DIALOG = "//div[contains(@class,'q-dialog')]"


def field(label: str, within: str = "") -> str:
    """The input of a Quasar field with this label."""
    return f"{within}//label[.//div[contains(@class,'q-field__label') and text()='{label}']]//input"


def button(text: str, within: str = "") -> str:
    return f"{within}//button[.//span[text()='{text}']]"


def in_dialog(driver, text: str):
    """The button of the open dialog, once the dialog has finished appearing (a click on a dialog still
    scaling in can land on its backdrop, which closes it)."""
    wait(driver).until(settled)
    return wait(driver).until(EC.element_to_be_clickable((By.XPATH, button(text, DIALOG))))


def page_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".q-page").text


def sign_in_admin(driver, app: RunningApp) -> None:
    driver.get(app.base_url + "/admin")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(app.base_url + "/admin/dashboard"))


def user_login(app: RunningApp, email: str, password: str) -> int:
    return httpx.post(
        f"{app.base_url}/api/auth/login", json={"email": email, "password": password}, timeout=HANG_SECONDS
    ).status_code


def test_admin_manages_a_user(driver, browser_app: RunningApp, admin_api: httpx.Client) -> None:
    email = f"managed-{uuid.uuid4().hex[:8]}@example.com"
    sign_in_admin(driver, browser_app)
    wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, "//div[contains(@class,'q-item')][.//div[text()='用户']]"))
    ).click()
    wait(driver).until(EC.url_to_be(browser_app.base_url + "/admin/users"))

    wait(driver).until(EC.element_to_be_clickable((By.XPATH, button("创建用户")))).click()
    wait(driver).until(EC.element_to_be_clickable((By.XPATH, field("邮箱", DIALOG)))).send_keys(email)
    initial = driver.find_element(By.XPATH, field("初始密码", DIALOG)).get_attribute("value")
    assert initial and len(initial) == 16, "a temporary password is offered"
    in_dialog(driver, "创建").click()
    wait(driver).until(lambda d: email in page_text(d))
    assert user_login(browser_app, email, initial) == 200

    search = driver.find_element(By.XPATH, field("搜索邮箱"))
    search.send_keys(email.split("@")[0].upper(), Keys.ENTER)
    wait(driver).until(lambda d: "找到 1 个用户" in page_text(d))

    def stored() -> dict:
        return admin_api.get("/api/admin/users", params={"q": email}).json()["items"][0]

    driver.find_element(By.CSS_SELECTOR, ".q-page .q-toggle").click()
    wait(driver).until(lambda d: f"{email} 已停用" in d.find_element(By.TAG_NAME, "body").text)
    assert stored()["disabled"] is True
    driver.find_element(By.CSS_SELECTOR, ".q-page .q-toggle").click()
    wait(driver).until(lambda d: f"{email} 已启用" in d.find_element(By.TAG_NAME, "body").text)
    assert stored()["disabled"] is False

    driver.find_element(By.XPATH, "//button[.//i[text()='password']]").click()
    new_password = (
        wait(driver)
        .until(EC.visibility_of_element_located((By.XPATH, field("临时密码", DIALOG))))
        .get_attribute("value")
    )
    assert new_password and new_password != initial
    in_dialog(driver, "设置密码").click()
    wait(driver).until(lambda d: "临时密码已生效" in d.find_element(By.XPATH, DIALOG).text)
    assert new_password in driver.find_element(By.XPATH, DIALOG).text  # to hand on to the user
    screenshot(driver, "admin-users-password")
    driver.find_element(By.XPATH, button("完成", DIALOG)).click()
    assert user_login(browser_app, email, new_password) == 200
    assert user_login(browser_app, email, initial) == 401

    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-dialog")))
    driver.find_element(By.XPATH, button("全局", "//div[contains(@class,'q-page')]")).click()
    rpm = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".q-dialog input[type=number]")))
    rpm.send_keys("5")
    in_dialog(driver, "保存").click()
    wait(driver).until(lambda d: d.find_elements(By.XPATH, button("5", "//div[contains(@class,'q-page')]")))
    assert stored()["rpm_limit"] == 5
    screenshot(driver, "admin-users")

    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-dialog")))
    driver.find_element(By.XPATH, "//button[.//i[text()='delete']]").click()
    in_dialog(driver, "删除").click()
    wait(driver).until(lambda d: "没有匹配的用户" in page_text(d))
    assert admin_api.get("/api/admin/users", params={"q": email}).json()["total"] == 0
    assert user_login(browser_app, email, new_password) == 401


def test_a_guest_is_asked_to_sign_in_while_guests_are_off(
    driver, browser_app: RunningApp, admin_api: httpx.Client
) -> None:
    assert admin_api.put("/api/admin/config", json={"guest_enabled": False}).status_code == 200
    try:
        driver.get(browser_app.base_url + "/")
        prompt = wait(driver).until(
            EC.visibility_of_element_located(
                (By.XPATH, "//*[text()='本站已关闭访客使用，登录后即可开始对话。']")
            )
        )
        assert prompt.is_displayed()
        assert not driver.find_element(By.CSS_SELECTOR, ".model-select").is_displayed()
        assert driver.find_element(By.CSS_SELECTOR, "textarea").get_attribute("disabled") is not None
        screenshot(driver, "chat-sign-in-required")
        driver.find_element(
            By.XPATH, "//div[contains(@class,'empty-state')]//button[.//span[text()='登录']]"
        ).click()
        # the sign-in form opens in a dialog on the page (issue 19: signing in never leaves the page)
        wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".q-dialog input[type=email]")))
        assert driver.current_url == browser_app.base_url + "/"
    finally:
        admin_api.put("/api/admin/config", json={"guest_enabled": True})
