"""The dashboard in headless Chromium: charts drawn with data, both themes readable (the contrast of the
charts' text against their card, computed as WCAG does), 375 px wide without sideways scrolling, a bad
custom range stopped on its field; screenshots of each state in tests/browser/screenshots/.

The time from navigation to the last chart drawn is measured in the page (``performance.now()`` when
the fourth plot has its SVG) and written to screenshots/dashboard-timing.json, never asserted: a busy
machine is slow (docs/performance.md has the figure).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from app.static_assets import module_url
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.test_chat_browser import wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, wait_until

CHARTS = 4
# resolves with performance.now() once every chart has drawn its SVG (checked on each animation frame)
CHARTS_DRAWN_JS = """
const done = arguments[arguments.length - 1];
const check = () => {
  const plots = document.querySelectorAll('.dash-chart .main-svg');
  if (document.querySelectorAll('.dash-chart').length >= CHARTS && new Set(
      [...plots].map(svg => svg.closest('.dash-chart'))).size >= CHARTS) done(performance.now());
  else requestAnimationFrame(check);
};
check();
""".replace("CHARTS", str(CHARTS))
TEXT_AND_CARD_JS = """
const text = document.querySelector('.dash-chart .xaxislayer-above text');
let card = text.closest('.q-card');
return [getComputedStyle(text).fill, getComputedStyle(card).backgroundColor,
        getComputedStyle(document.body).backgroundColor];
"""


def _rgb(css: str) -> tuple[float, float, float, float]:
    parts = [float(x) for x in re.findall(r"[\d.]+", css)]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(driver) -> float:
    """WCAG contrast of the charts' axis text against the card under it (a transparent card shows the
    page's background)."""
    text, card, body = driver.execute_script(TEXT_AND_CARD_JS)
    fg, bg = _rgb(text), _rgb(card)
    if bg[3] == 0:
        bg = _rgb(body)
    lighter, darker = sorted((_luminance(fg[:3]), _luminance(bg[:3])), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# the sign-in page's warm-up of plotly.js, once done: the module preloaded and run in a chart never shown
# (a person types for longer than that takes)
WARMED_UP_JS = """
const chart = document.querySelector('.hidden.js-plotly-plot');
return document.querySelector(`link[rel=modulepreload][href="${arguments[0]}"]`) !== null
  && chart !== null && chart.querySelector('.main-svg') !== null
  && getComputedStyle(chart).display === 'none';
"""


def _sign_in(driver, app: RunningApp) -> None:
    driver.get_log("browser")  # read: from here on, this page's console only
    driver.get(app.base_url + "/admin")
    wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
    wait(driver).until(lambda d: d.execute_script(WARMED_UP_JS, module_url("nicegui-plotly")))
    # Vue reports an error in a component's mounted() (where the chart is drawn) through console.error
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"the sign-in page's warm-up chart raised: {errors}"
    # plotly.js's text-measuring <svg> would be an unnamed image to a screen reader
    assert (
        driver.execute_script(
            "return getComputedStyle(document.getElementById('js-plotly-tester')).visibility"
        )
        == "hidden"
    )
    driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(TEST_ADMIN_PASSWORD, Keys.ENTER)
    wait(driver).until(EC.url_to_be(app.base_url + "/admin/dashboard"))


def _open_dashboard(driver, app: RunningApp) -> float:
    """Navigate to the dashboard; ms from the navigation to every chart drawn."""
    driver.get(app.base_url + "/admin/dashboard")
    driver.set_script_timeout(HANG_SECONDS)
    return float(driver.execute_async_script(CHARTS_DRAWN_JS))


def _set_dark(driver, dark: bool) -> None:
    is_dark = driver.execute_script("return document.body.classList.contains('body--dark')")
    if is_dark != dark:
        icon = "dark_mode" if not is_dark else "light_mode"
        button = driver.find_element(By.XPATH, f"//header//button[.//i[text()='{icon}']]")
        driver.execute_script("arguments[0].click()", button)  # a phone's open menu may cover it
        wait(driver).until(
            lambda d: d.execute_script("return document.body.classList.contains('body--dark')") == dark
        )


@pytest.fixture
def calls_made(browser_app: RunningApp, admin_api: httpx.Client) -> None:
    for stream in (False, True, False):
        answer = httpx.post(
            f"{browser_app.base_url}/api/chat/completions",
            timeout=HANG_SECONDS,
            json={"model": "plain-model", "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200
    wait_until(
        lambda: admin_api.get("/api/admin/stats").json()["range"]["calls"] >= 3,
        poll=0.05,
        what="calls counted",
    )


def test_dashboard_in_both_themes_and_on_a_phone(driver, browser_app: RunningApp, calls_made: None) -> None:
    _sign_in(driver, browser_app)  # lands on the dashboard: the browser's first plotly.js
    driver.set_script_timeout(HANG_SECONDS)
    timings = [float(driver.execute_async_script(CHARTS_DRAWN_JS))]
    sizes = driver.execute_script(
        "return performance.getEntriesByName(new URL(arguments[0], location.href).href)"
        ".map(entry => entry.transferSize)",
        module_url("nicegui-plotly"),
    )
    assert sizes == [0], f"plotly.js came over the network again after the sign-in page ran it: {sizes}"
    timings += [_open_dashboard(driver, browser_app) for _ in range(3)]  # then from the code cache
    text = driver.find_element(By.CSS_SELECTOR, ".q-page").text
    assert "调用次数" in text and "成功率" in text and "限流拒绝" in text and "IP 拦截" in text
    wait(driver).until(
        lambda d: (
            "plain-model"
            in d.execute_script(
                "return document.querySelector('.pielayer .slice')"
                "?.closest('.js-plotly-plot')?.textContent || ''"
            )
        )
    )
    plotly_scripts = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.endsWith(arguments[0]))",
        module_url("nicegui-plotly"),
    )
    assert plotly_scripts == [browser_app.base_url + module_url("nicegui-plotly")], (
        "plotly.js comes once per page, from the app"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "dashboard-timing.json").write_text(json.dumps({"navigation_to_charts_ms": timings}))

    _set_dark(driver, False)
    assert _contrast(driver) >= 4.5
    screenshot(driver, "dashboard-light")
    _set_dark(driver, True)
    wait(driver).until(lambda d: _contrast(d) >= 4.5)
    screenshot(driver, "dashboard-dark")

    driver.set_window_size(375, 812)
    _open_dashboard(driver, browser_app)
    # the frame may open its menu over the content on a phone (the frame's own matter): closed here
    driver.execute_script("document.querySelector('.q-drawer__backdrop')?.click()")
    wait(driver).until(
        lambda d: d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    )
    assert _contrast(driver) >= 4.5
    screenshot(driver, "dashboard-dark-375")
    _set_dark(driver, False)
    assert _contrast(driver) >= 4.5
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(driver, "dashboard-light-375")


def test_a_bad_custom_range_is_stopped_on_its_field(
    driver, browser_app: RunningApp, calls_made: None
) -> None:
    _sign_in(driver, browser_app)
    _open_dashboard(driver, browser_app)
    driver.find_element(By.XPATH, "//button[.//span[text()='自定义']]").click()
    start = wait(driver).until(
        EC.visibility_of_element_located((By.XPATH, "//label[.//div[text()='开始日期']]//input"))
    )
    end = driver.find_element(By.XPATH, "//label[.//div[text()='结束日期']]//input")
    calls_card = driver.find_element(By.XPATH, "//div[contains(@class,'q-card')][.//div[text()='调用次数']]")
    start.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    start.send_keys("2026-11-10")
    end.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    end.send_keys("2026-11-01")
    driver.find_element(By.XPATH, "//button[.//span[text()='应用']]").click()
    wait(driver).until(
        lambda d: "结束日期不能早于开始日期" in d.find_element(By.CSS_SELECTOR, ".q-page").text
    )
    screenshot(driver, "dashboard-bad-range")
    assert calls_card.is_displayed(), "the numbers were not reloaded"
    start.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    start.send_keys("not a date")
    driver.find_element(By.XPATH, "//button[.//span[text()='应用']]").click()
    wait(driver).until(lambda d: "不是有效日期" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
    start.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    start.send_keys("2026-10-01")
    driver.find_element(By.XPATH, "//button[.//span[text()='应用']]").click()
    wait(driver).until(lambda d: "2026-10-01 ~ 2026-11-01" in d.find_element(By.CSS_SELECTOR, ".q-page").text)
