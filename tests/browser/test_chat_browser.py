"""The main chat journeys in headless Chromium. Screenshots land in tests/browser/screenshots/."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import screenshot, settled, shown_dialog
from tests.helpers import HANG_SECONDS, RunningApp
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
STOP = "//button[.//i[text()='stop']]"


def wait(driver) -> WebDriverWait:
    """Waits for a state of the page, as long as it takes short of a hang (a busy machine is slow).

    An element that NiceGUI re-renders between finding it and reading it goes stale: that is the page
    still changing, so the check runs again rather than failing."""
    return WebDriverWait(
        driver, HANG_SECONDS, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )


def open_chat(driver, app: RunningApp, path: str = "/") -> None:
    driver.get(app.base_url + path)
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "textarea")))


def choose_model(driver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, ".model-select").click()
    option = wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, f"//div[contains(@class,'q-item')]//span[text()='{name}']"))
    )
    option.click()
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-menu")))


def type_and_send(driver, text: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "textarea")
    box.click()  # as a person would; a click outside also closes a menu still open
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-menu")))
    box.click()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def answer_text(driver) -> str:
    return " ".join(el.text for el in driver.find_elements(By.CSS_SELECTOR, ".bubble.assistant .answer"))


def test_guest_chat_with_reasoning_model(driver, browser_app: RunningApp) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "deepseek-r1")
    type_and_send(driver, "你好，请介绍一下你自己")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    # the answer has ended (the stop button is the send button again): the last render of the bubble
    # is done, so the click below is not undone by it
    wait(driver).until(EC.presence_of_element_located((By.XPATH, "//button[.//i[text()='arrow_upward']]")))
    panel = driver.find_element(By.CSS_SELECTOR, ".thinking")
    assert "已思考" in panel.text
    wait(driver).until(settled)  # the panel's collapse has ended: a click during it can be lost
    panel.click()  # open the collapsed panel: the reasoning is there
    wait(driver).until(
        lambda d: "Let me think about it." in d.find_element(By.CSS_SELECTOR, ".thinking").text
    )
    assert driver.find_element(By.CSS_SELECTOR, ".bubble.user").text == "你好，请介绍一下你自己"
    screenshot(driver, "chat-reasoning")

    driver.set_window_size(375, 760)  # a phone: nothing overflows sideways
    wait(driver).until(lambda d: d.execute_script("return document.documentElement.scrollWidth") <= 380)
    screenshot(driver, "chat-phone")


def test_shift_enter_adds_a_line_and_enter_sends(driver, browser_app: RunningApp) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "plain-model")
    box = driver.find_element(By.CSS_SELECTOR, "textarea")
    box.send_keys("line one")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("line two")
    assert box.get_attribute("value") == "line one\nline two"
    box.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    assert driver.find_element(By.CSS_SELECTOR, ".bubble.user").text == "line one\nline two"
    assert box.get_attribute("value") == ""


def test_stop_keeps_what_arrived(driver, browser_app: RunningApp, upstream: UpstreamServer) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "slow-model")
    type_and_send(driver, "write a long story")
    before = len(upstream.ends_of("slow-model"))
    wait(driver).until(lambda d: "w3" in answer_text(d))
    driver.find_element(By.XPATH, STOP).click()  # the send button is now "stop"
    wait(driver).until(lambda d: "已停止生成" in d.find_element(By.CSS_SELECTOR, ".bubble.assistant").text)
    kept = answer_text(driver).split()
    assert kept[:4] == ["w0", "w1", "w2", "w3"] and kept == [f"w{i}" for i in range(len(kept))]
    # the answer has no end of its own: the upstream request ends only because it was cancelled
    wait(driver).until(lambda _: upstream.ends_of("slow-model")[before:])
    assert [end.cancelled for end in upstream.ends_of("slow-model")[before:]] == [True]
    assert answer_text(driver).split() == kept, "nothing arrives after the stop"
    screenshot(driver, "chat-stopped")


def test_rate_limit_dialog(driver, browser_app: RunningApp, admin_api: httpx.Client) -> None:
    """A fresh account, so that its window is empty: a new limit counts what the old one admitted in the
    last minute (docs/behaviour.md#rate-limiting), and other tests chat as guests from this address."""
    email = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    registered = httpx.post(
        f"{browser_app.base_url}/api/auth/register",
        timeout=HANG_SECONDS,
        json={"email": email, "password": "password-1"},
    )
    assert registered.status_code == 201, registered.text
    previous = admin_api.get("/api/admin/config").json()["user_rpm"]
    assert admin_api.put("/api/admin/config", json={"user_rpm": 1}).status_code == 200
    try:
        driver.get(browser_app.base_url + "/login")
        wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[type=email]")))
        driver.find_element(By.CSS_SELECTOR, "input[type=email]").send_keys(email)
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys("password-1", Keys.ENTER)
        wait(driver).until(EC.url_to_be(browser_app.base_url + "/"))
        open_chat(driver, browser_app)
        choose_model(driver, "plain-model")
        type_and_send(driver, "first")
        wait(driver).until(lambda d: ANSWER in answer_text(d))
        type_and_send(driver, "second, kept after the error")
        dialog = shown_dialog(driver)
        wait(driver).until(lambda d: "秒后可以重试" in dialog.text)
        assert "您超过当前使用限制，请稍后再试" in dialog.text
        assert (
            driver.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value")
            == "second, kept after the error"
        )
        screenshot(driver, "chat-rate-limited")
    finally:
        admin_api.put("/api/admin/config", json={"user_rpm": previous})


def test_login_then_chat_shows_the_user(driver, browser_app: RunningApp) -> None:
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(
        f"{browser_app.base_url}/api/auth/register",
        timeout=HANG_SECONDS,
        json={"email": email, "password": "password-1"},
    )
    driver.get(browser_app.base_url + "/login")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[type=email]")))
    screenshot(driver, "login")
    driver.find_element(By.CSS_SELECTOR, "input[type=email]").send_keys(email)
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys("password-1", Keys.ENTER)
    wait(driver).until(EC.url_to_be(browser_app.base_url + "/"))
    open_chat(driver, browser_app)
    choose_model(driver, "plain-model")
    type_and_send(driver, "hello as a user")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    driver.find_element(By.XPATH, "//button[.//i[text()='account_circle']]").click()
    wait(driver).until(lambda d: email in d.find_element(By.CSS_SELECTOR, ".q-menu").text)
    screenshot(driver, "chat-logged-in")

    driver.refresh()  # the login survives a refresh, the history does not
    open_chat(driver, browser_app)
    assert driver.find_elements(By.XPATH, "//button[.//i[text()='account_circle']]")
    assert not driver.find_elements(By.CSS_SELECTOR, ".bubble.user")
    assert "有什么可以帮你" in driver.find_element(By.CSS_SELECTOR, ".empty-state").text


def test_refresh_clears_the_history(driver, browser_app: RunningApp) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "plain-model")
    type_and_send(driver, "something to forget")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    driver.refresh()
    open_chat(driver, browser_app)
    assert not driver.find_elements(By.CSS_SELECTOR, ".bubble")


@pytest.mark.parametrize("dark", [False, True])
def test_model_html_is_not_executed_and_code_has_copy(driver, browser_app: RunningApp, dark: bool) -> None:
    open_chat(driver, browser_app)
    if dark:
        driver.find_element(By.XPATH, "//button[.//i[text()='dark_mode']]").click()
    choose_model(driver, "html-model")
    type_and_send(driver, "show html")
    wait(driver).until(lambda d: "done." in answer_text(d))
    assert driver.execute_script("return window.__xss === undefined")
    assert not driver.find_elements(By.CSS_SELECTOR, ".bubble.assistant script")
    choose_model(driver, "code-model")
    type_and_send(driver, "show code")
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".bubble.assistant .code-block"))
    code = driver.find_element(By.CSS_SELECTOR, ".bubble.assistant .code-block")
    assert "return a + b" in code.text
    assert code.find_element(By.CSS_SELECTOR, ".code-lang").text == "python"
    assert code.find_elements(By.CSS_SELECTOR, "button.code-copy")
    screenshot(driver, "chat-code-dark" if dark else "chat-code")


def test_leaving_the_page_mid_answer_ends_the_upstream_request(
    driver,
    browser_app: RunningApp,
    upstream: UpstreamServer,
) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "slow-model")
    before = len(upstream.ends_of("slow-model"))
    type_and_send(driver, "a long answer, then I leave")
    wait(driver).until(lambda d: "w2" in answer_text(d))
    driver.get("about:blank")  # the tab navigates away (as on close or refresh)
    # the answer has no end of its own: the upstream request ends only because it was cancelled
    wait(driver).until(lambda _: upstream.ends_of("slow-model")[before:])
    assert [end.cancelled for end in upstream.ends_of("slow-model")[before:]] == [True]


SCROLLER = "document.querySelector('.q-scrollarea__container')"


def _scroll(driver) -> tuple[float, float, float]:
    top, height, visible = driver.execute_script(
        f"const s = {SCROLLER}; return [s.scrollTop, s.scrollHeight, s.clientHeight];"
    )
    return top, height, visible


def _settled_pieces(driver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, ".answer .settled"))


def test_a_long_answer_is_followed_until_the_reader_scrolls_up(
    driver, browser_app: RunningApp, upstream: UpstreamServer
) -> None:
    """The page keeps the growing answer in view (also while it gets taller between two renders), stops
    when the reader scrolls up, and the answer arrives whole, in order, in its settled pieces.

    How many renders (and so settled pieces) a stream of a given length gets depends on the machine's
    speed, as renders are spaced by what they cost: so the answer goes on until the page has shown
    each of these, and only then ends."""
    open_chat(driver, browser_app)
    choose_model(driver, "long-model")
    type_and_send(driver, "a long answer")
    try:
        wait(driver).until(lambda d: "w200" in answer_text(d))
        wait(driver).until(lambda d: (lambda t, h, v: h > v + 200 and t + v >= h - 4)(*_scroll(d)))
        for _ in range(4):  # the reader scrolls back up, a few steps as a wheel or a finger does
            driver.execute_script(f"{SCROLLER}.scrollTop -= 150;")
            time.sleep(0.05)
        driver.execute_script(f"{SCROLLER}.scrollTop = 0;")
        height_then = _scroll(driver)[1]
        # the answer grows by more than a screen below the reader and settles a second piece
        wait(driver).until(lambda d: _scroll(d)[1] > height_then + 1000 and _settled_pieces(d) >= 2)
    finally:
        upstream.end_open_streams()
    wait(driver).until(lambda d: not d.find_elements(By.XPATH, STOP))
    top, height, visible = _scroll(driver)
    assert top + visible < height - 400, (top, height, visible)  # left where the reader went, not followed
    words = answer_text(driver).split()
    assert len(words) > 200 and words == [f"w{i}" for i in range(len(words))]
    assert _settled_pieces(driver) >= 2


def test_signing_in_in_the_dialog_mid_conversation_keeps_it(
    driver, browser_app: RunningApp, admin_api: httpx.Client
) -> None:
    """Issue 19: the header's 登录 opens a dialog; signed in there, the page stays (conversation, draft,
    model) and the next message is the user's call."""
    email = f"dialog-{uuid.uuid4().hex[:8]}@example.com"
    registered = httpx.post(
        f"{browser_app.base_url}/api/auth/register",
        timeout=HANG_SECONDS,
        json={"email": email, "password": "password-1"},
    )
    assert registered.status_code == 201, registered.text
    open_chat(driver, browser_app)
    choose_model(driver, "plain-model")
    type_and_send(driver, "asked as a guest")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    wait(driver).until(EC.presence_of_element_located((By.XPATH, "//button[.//i[text()='arrow_upward']]")))
    box = driver.find_element(By.CSS_SELECTOR, ".composer textarea")
    box.send_keys("a draft kept through the sign-in")
    chosen = driver.find_element(By.CSS_SELECTOR, ".model-select").text
    driver.execute_script("window.signInMark = 'same page'")  # gone if the page were reloaded

    driver.find_element(By.XPATH, "//button[.//span[text()='登录']]").click()
    dialog = shown_dialog(driver)
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".q-dialog input[type=email]")))
    dialog.find_element(By.CSS_SELECTOR, "input[type=email]").send_keys(email)
    dialog.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys("wrong-password", Keys.ENTER)
    wait(driver).until(lambda d: "邮箱或密码错误" in d.find_element(By.CSS_SELECTOR, ".q-dialog").text)
    password = driver.find_element(By.CSS_SELECTOR, ".q-dialog input[type=password]")
    password.send_keys(Keys.CONTROL, "a")
    password.send_keys("password-1", Keys.ENTER)
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-dialog")))
    account = wait(driver).until(
        EC.element_to_be_clickable((By.XPATH, "//button[.//i[text()='account_circle']]"))
    )
    assert driver.execute_script("return window.signInMark") == "same page", "not reloaded"
    assert driver.current_url == browser_app.base_url + "/"
    assert [el.text for el in driver.find_elements(By.CSS_SELECTOR, ".bubble.user")] == ["asked as a guest"]
    assert ANSWER in answer_text(driver)
    box = driver.find_element(By.CSS_SELECTOR, ".composer textarea")
    assert box.get_attribute("value") == "a draft kept through the sign-in"
    assert driver.find_element(By.CSS_SELECTOR, ".model-select").text == chosen
    screenshot(driver, "chat-signed-in-in-dialog")

    box.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".bubble.user")) == 2)
    wait(driver).until(lambda d: answer_text(d).count(ANSWER) == 2)
    wait(driver).until(
        lambda _: admin_api.get("/api/admin/logs", params={"user": email}).json()["total"] == 1
    )
    account.click()
    wait(driver).until(lambda d: email in d.find_element(By.CSS_SELECTOR, ".q-menu").text)
