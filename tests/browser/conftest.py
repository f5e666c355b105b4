"""Browser tests in headless Chromium (Debian's chromium + chromedriver) against a real server."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chat_helpers import add_channel
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app
from tests.upstream_server import UpstreamServer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# the pages' language comes from Accept-Language, which only --accept-lang sets (--lang does not, headless)
CHINESE = "zh-CN"


def _require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{', '.join(missing)} missing in CI (.ci/run installs Debian's chromium + chromium-driver)"
            )
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("browser-app")
    env = production_env(
        data_dir, GUEST_RPM="1000", USER_RPM="1000", REGISTER_PER_IP_PER_HOUR="1000", **TEST_TIMEOUTS
    )
    with run_app(env, log_path=data_dir / "app.log") as app:
        token = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            timeout=HANG_SECONDS,
            json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        ).json()["access_token"]
        with httpx.Client(timeout=HANG_SECONDS, base_url=app.base_url) as http:
            headers = {"Authorization": f"Bearer {token}"}
            for scenario, model, name in [
                ("reasoning_content", "deepseek-r1", "DeepSeek R1"),
                # answers without an end of their own: they go on until stopped, left or ended by the test
                ("open-150", "slow-model", "Slow Model"),
                ("open-6-20", "long-model", "Long Model"),  # in paragraphs of 20 words
                ("html", "html-model", "HTML Model"),
                ("code", "code-model", "Code Model"),
                ("rich", "rich-model", "Rich Model"),  # math, a long code line, a wide table (issue 19)
                ("ok", "plain-model", "Plain Model"),
                ("probe", "probe-model", "Probe Model"),  # the payloads of issue 15 (output isolation)
            ]:
                add_channel(http, headers, base_url=upstream.base_url(scenario), model=model, name=name)
        yield app


@pytest.fixture
def admin_api(browser_app: RunningApp) -> Iterator[httpx.Client]:
    token = httpx.post(
        f"{browser_app.base_url}/api/auth/admin/login",
        timeout=HANG_SECONDS,
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
    ).json()["access_token"]
    with httpx.Client(
        timeout=HANG_SECONDS, base_url=browser_app.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        yield http


def chromium(*, logs: bool = False, language: str = CHINESE) -> Iterator[object]:
    """A headless Chromium asking for pages in ``language`` (Chinese unless a test checks English);
    ``logs``: it also keeps the console (``get_log("browser")``, where CSP violations are reported)
    and the DevTools network events (``get_log("performance")``)."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pyaichat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = [f"--lang={language.split(',')[0]}", f"--accept-lang={language}", f"--user-data-dir={profile}"]
    for flag in [*CHROME_FLAGS, *flags, "--window-size=1200,860"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    chrome.implicitly_wait(0)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def _module_chromium() -> Iterator[object]:
    """One Chromium for a test file's tests: a start costs 3-4 s on two cores."""
    yield from chromium()


@pytest.fixture
def driver(_module_chromium: Any) -> Iterator[object]:
    """A fresh tab of the file's Chromium with no cookies, at the default size: what a test changes
    for its tab (device emulation, extra headers, downloads) goes with the tab. The test's own tabs are
    closed when it ends, which ends their pages' connections as quitting the browser did."""
    browser = _module_chromium
    _only_a_fresh_tab(browser)
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.set_window_size(1200, 860)
    try:
        yield browser
    finally:
        _only_a_fresh_tab(browser)


def _only_a_fresh_tab(browser: Any) -> None:
    old = list(browser.window_handles)
    browser.switch_to.new_window("tab")
    fresh = browser.current_window_handle
    for handle in old:
        browser.switch_to.window(handle)
        browser.close()
    browser.switch_to.window(fresh)


@pytest.fixture
def logging_driver() -> Iterator[object]:
    yield from chromium(logs=True)


# icons not one glyph wide once the fonts have loaded: a name the icon font has no ligature for is drawn
# as its letters (the font's letters have no width: nothing shows), or as text in another font
_UNDRAWN_ICONS = """
const done = arguments[arguments.length - 1];
const drawn = i => {  // the text's own width (the element is 1em wide whatever it holds)
  const range = document.createRange();
  range.selectNodeContents(i);
  const width = range.getBoundingClientRect().width, size = parseFloat(getComputedStyle(i).fontSize);
  return width >= 0.5 * size && width <= 1.5 * size;
};
document.fonts.ready.then(() => done([...document.querySelectorAll('i.material-icons')]
  .filter(i => i.getClientRects().length && i.textContent.trim() && !drawn(i))
  .map(i => i.textContent.trim())));
"""


# The page is ready for a check or a click: its finite animations (a bubble or card fading in) have ended,
# so the colours axe reads are the final ones and a button is where it stays; endless ones (the typing
# dots) are left alone. A dialog or menu being shown is a Vue transition (its ``…-enter-…`` classes come a
# frame before its CSS transition runs).
SETTLED_JS = """
return document.readyState === 'complete' && document.getAnimations().every(
  a => a.playState !== 'running' || a.effect.getTiming().iterations === Infinity)
  && !document.querySelector('[class*="-enter-"], [class*="-leave-"]');
"""


def settled(driver) -> bool:
    """True once the page's finite animations and Vue transitions have ended (a dialog fully shown: a
    click on a button of a dialog still scaling in can land on its backdrop, which closes it)."""
    return bool(driver.execute_script(SETTLED_JS))


def shown_dialog(driver):
    """The open dialog, once it has finished appearing (its buttons are where a click lands)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.wait import WebDriverWait

    dialog = WebDriverWait(driver, HANG_SECONDS).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, ".q-dialog"))
    )
    WebDriverWait(driver, HANG_SECONDS).until(settled)
    return dialog


def undrawn_icons(driver) -> list[str]:
    """The names of the icons on screen that are not drawn as an icon (tests/icon_font_build.py)."""
    return driver.execute_async_script(_UNDRAWN_ICONS)


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
