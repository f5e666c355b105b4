"""axe-core in headless Chromium on every page, light and dark (issue 19 point 7, issue 20 point 1):
no violation of impact "serious" or "critical" on the chat page (empty, and with a streamed answer),
/login, /register, /admin/login and each admin console page.

axe's own axe.min.js comes from the selenium-axe-python package (test extra; it bundles axe-core 4.9,
loaded from the installed file: nothing is downloaded at run time), injected with Selenium."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.conftest import screenshot
from tests.browser.test_chat_browser import ANSWER, answer_text, choose_model, type_and_send, wait
from tests.browser.test_console_browser import DARK_MODE, sign_in
from tests.helpers import HANG_SECONDS, RunningApp

ADMIN_PAGES = ["dashboard", "channels", "users", "logs", "ip", "settings", "models", "audit"]
FAILING_IMPACTS = {"serious", "critical"}

# The page is ready for a check: its finite animations (a bubble or card fading in) have ended, so the
# colours axe reads are the final ones; endless ones (the typing dots) are left alone.
SETTLED_JS = """
return document.readyState === 'complete' && document.getAnimations().every(
  a => a.playState !== 'running' || a.effect.getTiming().iterations === Infinity);
"""
RUN_AXE_JS = """
const done = arguments[arguments.length - 1];
if (!window.axe) { (0, eval)(arguments[0]); }
axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => ({target: n.target.join(' '), html: n.html, summary: n.failureSummary}))}))),
  e => done([{id: 'axe-error', impact: 'critical', help: String(e), targets: []}]));
"""


@cache
def axe_source() -> str:
    return (files("selenium_axe_python") / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def is_dark(driver: Any) -> bool:
    return bool(driver.execute_script("return document.body.classList.contains('body--dark')"))


def ready(driver: Any, dark: bool) -> None:
    """The page is built (its Dark mode switch is there), in the theme asked for, and has settled."""
    switch = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, DARK_MODE)))
    if is_dark(driver) != dark:  # the choice is kept for the browser: set on the first page only
        switch.click()
    wait(driver).until(lambda d: is_dark(d) == dark)
    wait(driver).until(lambda d: d.execute_script(SETTLED_JS))


def check(driver: Any, name: str, found: dict[str, list[dict[str, Any]]]) -> None:
    driver.set_script_timeout(HANG_SECONDS)
    violations = driver.execute_async_script(RUN_AXE_JS, axe_source())
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if failing:
        screenshot(driver, f"axe-{name}")
        found[name] = failing


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for page, violations in found.items():
        for v in violations:
            lines.append(f"{page}: {v['id']} ({v['impact']}) {v['help']}")
            for node in v["targets"]:
                lines.append(f"    {node['target']}  {node['html'][:160]}")
                lines.extend(f"      {line}" for line in (node["summary"] or "").splitlines())
    return "\n".join(lines)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_or_critical_axe_violations(driver: Any, browser_app: RunningApp, theme: str) -> None:
    dark = theme == "dark"
    found: dict[str, list[dict[str, Any]]] = {}
    base = browser_app.base_url
    for path in ["/login", "/register", "/admin/login", "/"]:
        driver.get(base + path)
        ready(driver, dark)
        check(driver, f"{path.strip('/') or 'chat'}-{theme}", found)

    choose_model(driver, "plain-model")  # still on "/": one streamed answer, ended
    type_and_send(driver, "hello")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    wait(driver).until(EC.presence_of_element_located((By.XPATH, "//button[.//i[text()='arrow_upward']]")))
    ready(driver, dark)
    check(driver, f"chat-answer-{theme}", found)

    sign_in(driver, browser_app)
    for page in ADMIN_PAGES:
        driver.get(f"{base}/admin/{page}")
        ready(driver, dark)
        if page == "dashboard":  # its charts are drawn after the page is built
            wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot .main-svg")))
            wait(driver).until(lambda d: d.execute_script(SETTLED_JS))
        check(driver, f"admin-{page}-{theme}", found)

    count = sum(len(v) for v in found.values())
    assert not found, f"{count} serious or critical axe violations ({theme}):\n{report(found)}"
