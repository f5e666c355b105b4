"""The installed package (as the Docker image gets it from ``pip install .``) runs outside the source tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import HANG_SECONDS, ROOT, production_env, run_app


def test_wheel_runs_outside_the_source_tree(tmp_path: Path) -> None:
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = wheel_dir.glob("pyaichat-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "pages" / "theme.css").exists(), "package data must be in the wheel"
    assert (target / "app" / "migrations" / "versions" / "0001_baseline.py").exists(), "migrations too"
    assert not (target / "tests").exists(), "tests are not shipped"

    env = production_env(tmp_path / "data", PYTHONPATH=str(target), NICEGUI_STORAGE_PATH=str(tmp_path / "ng"))
    with run_app(env, log_path=tmp_path / "app.log", cwd=tmp_path) as app:
        page = httpx.get(f"{app.base_url}/", timeout=HANG_SECONDS)
        assert page.status_code == 200 and ".app-shell" in page.text
        assert "pyaichat is running (production mode)" in app.log_text()
