"""Model output isolation and the page security headers in headless Chromium (issue 15 point 5).

The probe's payloads come from the loopback upstream (scenario ``probe``) and point at its ``/exfil/…``,
which records every request it gets; DevTools' network events record every request the page makes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot
from tests.browser.test_chat_browser import STOP, answer_text, choose_model, open_chat, type_and_send, wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp
from tests.upstream_server import PROBE_END, UpstreamServer

LEFT_THE_ANSWER = ("img", "form", "input", "button", "iframe", "style", "link", "meta", "base", "object")
NOT_COVERED = """
const box = document.querySelector('textarea').getBoundingClientRect();
const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
return !!(hit && hit.closest('.composer'));
"""
OPEN_SOCKET = """
const [url, done] = arguments;
const socket = new WebSocket(url);
socket.onopen = () => { socket.close(); done('open'); };
socket.onerror = () => done('refused');
"""


def devtools_events(driver, method: str) -> list[dict[str, Any]]:
    """The DevTools events of that kind since the last call (reading the log empties it)."""
    events = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == method:
            events.append(message["params"])
    return events


def requested_urls(driver) -> list[str]:
    return [event["request"]["url"] for event in devtools_events(driver, "Network.requestWillBeSent")]


def csp_violations(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def test_the_probes_payloads_load_submit_hide_and_run_nothing(
    logging_driver, browser_app: RunningApp, upstream: UpstreamServer
) -> None:
    driver = logging_driver
    upstream.exfil_hits.clear()
    open_chat(driver, browser_app)
    choose_model(driver, "probe-model")
    type_and_send(driver, "probe")
    wait(driver).until(lambda d: PROBE_END in answer_text(d))
    wait(driver).until(lambda d: not d.find_elements(By.XPATH, STOP))  # the answer is complete
    thinking = driver.find_element(By.CSS_SELECTOR, ".thinking")
    thinking.click()  # the reasoning, collapsed once the answer started, holds a payload too
    # reasoning is Markdown like the answer (issue 19): its image is a link to click, never loaded
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".thinking a.md-image"))
    driver.find_element(By.XPATH, "//*[contains(@class,'answer')]//*[text()[contains(., 'Send it')]]").click()
    screenshot(driver, "output-probe")

    requests = requested_urls(driver)
    assert any(url.startswith(browser_app.base_url) for url in requests), "the recording works"
    upstream_origin = f"http://127.0.0.1:{upstream.port}"
    assert [url for url in requests if url.startswith(upstream_origin)] == []
    assert upstream.exfil_hits == []

    answer = driver.find_element(By.CSS_SELECTOR, ".bubble.assistant .answer")
    for selector in (*LEFT_THE_ANSWER, "[style]:not(th):not(td)", "[onerror]", ".fixed"):
        assert not answer.find_elements(By.CSS_SELECTOR, selector), selector
    assert not thinking.find_elements(By.CSS_SELECTOR, "img")
    links = answer.find_elements(By.CSS_SELECTOR, "a")
    assert [link.text for link in links] == ["[图片]", "[图片]", "javascript link", "web link"]
    for link in links:
        assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener noreferrer"
        href = link.get_attribute("href")
        assert href is None or href.startswith(f"{upstream_origin}/exfil/"), href
    assert driver.execute_script("return window.__probe") is None
    assert driver.execute_script(NOT_COVERED), "nothing covers the input box"
    assert driver.find_element(By.CSS_SELECTOR, "textarea").is_displayed()
    assert driver.find_element(By.CSS_SELECTOR, ".app-header").is_displayed()
    assert driver.current_url == browser_app.base_url + "/"
    assert driver.execute_script("return document.baseURI") == browser_app.base_url + "/"
    assert csp_violations(driver) == [], "nothing was left for the policy to stop"


def _sign_in_as_admin(driver, app: RunningApp) -> None:
    driver.get(app.base_url + "/admin")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(app.base_url + "/admin/dashboard"))


def test_the_pages_work_under_the_policy(logging_driver, browser_app: RunningApp) -> None:
    """Chat (streaming, dark mode), sign-in pages, every admin page (charts included) and /docs (a call
    made from it) work with the Content-Security-Policy on, and the browser reports no violation."""
    driver = logging_driver
    open_chat(driver, browser_app)
    choose_model(driver, "plain-model")
    type_and_send(driver, "hello")
    wait(driver).until(lambda d: "Hello from the upstream server." in answer_text(d))
    driver.find_element(By.XPATH, "//button[.//i[text()='dark_mode']]").click()
    wait(driver).until(lambda d: "body--dark" in d.find_element(By.TAG_NAME, "body").get_attribute("class"))
    screenshot(driver, "csp-chat-dark")
    for path in ("/login", "/register"):
        driver.get(browser_app.base_url + path)
        wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[type=password]")))

    _sign_in_as_admin(driver, browser_app)
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 2)
    for path, ready in [
        ("/admin/channels", "Plain Model"),
        ("/admin/logs", "导出 CSV"),
        ("/admin/ip", "IP 禁用列表"),
        ("/admin/settings", "保存"),
    ]:
        driver.get(browser_app.base_url + path)
        wait(driver).until(lambda d, text=ready: text in d.find_element(By.CSS_SELECTOR, ".q-page").text)

    driver.get(browser_app.base_url + "/docs")
    operation = wait(driver).until(
        EC.element_to_be_clickable((By.ID, "operations-health-health_api_health_get"))
    )
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))).click()
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".execute"))).click()
    wait(driver).until(
        lambda d: '"status": "ok"' in d.find_element(By.CSS_SELECTOR, ".responses-wrapper").text
    )
    screenshot(driver, "csp-docs")

    documents = [
        event["response"]
        for event in devtools_events(driver, "Network.responseReceived")
        if event["type"] == "Document"
    ]
    assert len(documents) >= 9
    for response in documents:
        headers = {name.lower(): value for name, value in response["headers"].items()}
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), response["url"]
    assert csp_violations(driver) == []


def test_another_sites_page_cannot_open_the_ui_websocket(
    driver, browser_app: RunningApp, upstream: UpstreamServer
) -> None:
    driver.set_script_timeout(HANG_SECONDS)
    socket_url = (
        browser_app.base_url.replace("http://", "ws://") + "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    )
    driver.get(upstream.base_url("ok") + "/models")  # a page of another origin (another port)
    assert driver.execute_async_script(OPEN_SOCKET, socket_url) == "refused"
    open_chat(driver, browser_app)
    assert driver.execute_async_script(OPEN_SOCKET, socket_url) == "open"


def test_a_block_ends_the_streaming_page_of_that_ip(
    driver, browser_app: RunningApp, admin_api: httpx.Client, upstream: UpstreamServer
) -> None:
    open_chat(driver, browser_app)
    choose_model(driver, "slow-model")
    before = len(upstream.ends_of("slow-model"))
    type_and_send(driver, "a long answer")
    wait(driver).until(lambda d: "w2" in answer_text(d))
    created = admin_api.post("/api/admin/blocked-ips", json={"ip_address": "127.0.0.0/8", "reason": "test"})
    blocked_at = time.monotonic()
    assert created.status_code == 201, created.text
    try:
        wait(driver).until(lambda d: "您的 IP 已被禁止访问" in d.find_element(By.TAG_NAME, "body").text)
        print(f"\nthe page showed the block {time.monotonic() - blocked_at:.3f} s after the API answered")
        assert "回答中断：IP 已被禁用" in driver.find_element(By.CSS_SELECTOR, ".bubble.assistant").text
        wait(driver).until(lambda _: upstream.ends_of("slow-model")[before:])
        assert [end.cancelled for end in upstream.ends_of("slow-model")[before:]] == [True]
        screenshot(driver, "chat-blocked-mid-answer")
    finally:
        admin_api.delete(f"/api/admin/blocked-ips/{created.json()['id']}")
