"""Browser sessions in headless Chromium (docs/configuration.md#browser-sessions-nicegui): the session
files hold no token in clear and are the server user's alone (0600 in a 0700 folder); a sign-in
survives a restart, and a new ADMIN_PASSWORD signs the admin out."""

from __future__ import annotations

import contextlib
import json
import re
import stat
import uuid
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.test_chat_browser import wait
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, free_port, production_env, run_app, wait_until

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")  # header.payload.signature in base64url


def session_files(storage: Path) -> list[Path]:
    return sorted(storage.glob("storage-user-*.json"))


def stored_values(storage: Path) -> dict[str, object]:
    values: dict[str, object] = {}
    for path in session_files(storage):
        with contextlib.suppress(ValueError):  # being replaced right now
            values.update(json.loads(path.read_text(encoding="utf-8")))
    return values


def test_session_files_hold_sealed_tokens_and_survive_a_restart_but_not_a_new_admin_password(
    driver, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    storage = data_dir / ".nicegui"
    data_dir.mkdir()
    env = production_env(data_dir, APP_PORT=str(free_port()))  # one port: the browser's cookie follows it
    email = f"session-{uuid.uuid4().hex[:8]}@example.com"
    with run_app(env, log_path=tmp_path / "first.log") as app:
        registered = httpx.post(
            f"{app.base_url}/api/auth/register",
            json={"email": email, "password": "password-1"},
            timeout=HANG_SECONDS,
        )
        assert registered.status_code == 201
        driver.get(app.base_url + "/login")
        wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[type=email]")))
        driver.find_element(By.CSS_SELECTOR, "input[type=email]").send_keys(email)
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys("password-1", Keys.ENTER)
        wait(driver).until(EC.url_to_be(app.base_url + "/"))
        driver.get(app.base_url + "/admin/login")
        wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
        driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(
            TEST_ADMIN_PASSWORD, Keys.ENTER
        )
        wait(driver).until(EC.url_to_be(app.base_url + "/admin/dashboard"))
        # NiceGUI writes the file in the background once the page changed it
        wait_until(
            lambda: {"token", "admin_token"} <= set(stored_values(storage)), poll=0.1, what="session file"
        )

        values = stored_values(storage)
        for key in ("token", "admin_token"):
            assert isinstance(values[key], str) and not JWT.search(values[key]), "sealed, not a JWT"
        text = "".join(path.read_text(encoding="utf-8") for path in session_files(storage))
        assert not JWT.search(text) and email not in text
        assert stat.S_IMODE(storage.stat().st_mode) == 0o700
        for path in session_files(storage):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    with run_app(env, log_path=tmp_path / "restart.log") as app:
        driver.get(app.base_url + "/admin/dashboard")
        wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".q-header")))
        assert driver.current_url == app.base_url + "/admin/dashboard", "the admin stays signed in"
        driver.get(app.base_url + "/")
        wait(driver).until(
            EC.presence_of_element_located((By.XPATH, "//button[.//i[text()='account_circle']]"))
        )

    changed = {**env, "ADMIN_PASSWORD": "a-new-admin-password-3"}
    with run_app(changed, log_path=tmp_path / "new-password.log") as app:
        driver.get(app.base_url + "/admin/dashboard")
        wait(driver).until(EC.url_to_be(app.base_url + "/admin/login"))
        driver.get(app.base_url + "/")  # the user's sign-in is not the admin's password's business
        wait(driver).until(
            EC.presence_of_element_located((By.XPATH, "//button[.//i[text()='account_circle']]"))
        )
