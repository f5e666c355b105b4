"""Every benchmark runs at a tiny size, so the benchmark code cannot rot. No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, clean_environ

TITLES = [
    "1. Non-streaming call",
    "2. One stream of",
    "concurrent streams of",
    "4. Rate limiter exactness, memory storage",
    "4. Rate limiter exactness, Redis storage",
    "4. Request latency with rate limits on",
    "5. Request latency with call logging on",
    "5. Sustained call-log inserts",
    "6. Admin at scale",
]


def _quick_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ(PYTHONPATH=str(ROOT))
    if os.environ.get("CI"):
        env["CI"] = os.environ["CI"]
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


# correctness figures (not timings): a table's row whose verdict must be ✅ at any size and load
CORRECT = ["requests answered with neither 200 nor 429", "CSV export rows"]


def assert_correct(stdout: str, metrics: list[str]) -> None:
    """Every row of ``stdout`` that starts with one of ``metrics`` (each at least once) ends with ✅."""
    lines = stdout.splitlines()
    for metric in metrics:
        rows = [line.rstrip() for line in lines if line.startswith(metric)]
        assert rows, metric
        for row in rows:
            assert row.endswith("✅"), row


def test_quick_benchmark_run(tmp_path: Path) -> None:
    """1 to 7 on SQLite; 8 runs in the next test, on the PostgreSQL server of that run."""
    result = _quick_run("--only", "1,2,3,4,5,6,7", "--output", str(tmp_path / "performance.md"))
    for title in TITLES:
        assert title in result.stdout, title
    assert_correct(result.stdout, [*CORRECT, "chunks lost (gateway)"])
    report = (tmp_path / "performance.md").read_text()
    assert "| metric | measured | target |" in report
    if os.environ.get("CI") == "true" or "7. skipped" not in result.stdout:
        assert "7. Chat page streaming" in result.stdout
        assert "7. Chat page speed" in result.stdout
