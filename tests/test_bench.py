"""Every benchmark runs at a tiny size, so the benchmark code cannot rot. No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, clean_environ
from tests.postgres_server import require_postgres
from tests.redis_server import redis_binary
from tests.replicas import nginx_binary

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


POSTGRES_TITLES = [
    "1. Non-streaming call (PostgreSQL)",
    "4. Rate limiter exactness (PostgreSQL), memory storage",
    "4. Rate limiter exactness (PostgreSQL), Redis storage",
    "4. Request latency with rate limits on ÷ off (PostgreSQL;",
    "5. Request latency with call logging on ÷ off (PostgreSQL;",
    "5. Sustained call-log inserts (PostgreSQL)",
    "6. Admin at scale (PostgreSQL)",
    "8. Throughput through nginx with 1, 2 replicas",
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


def test_quick_benchmark_run(tmp_path: Path) -> None:
    """1 to 7 on SQLite; 8 runs in the next test, on the PostgreSQL server of that run."""
    result = _quick_run("--only", "1,2,3,4,5,6,7", "--output", str(tmp_path / "performance.md"))
    for title in TITLES:
        assert title in result.stdout, title
    report = (tmp_path / "performance.md").read_text()
    assert "| metric | measured | target |" in report
    if os.environ.get("CI") == "true" or "7. skipped" not in result.stdout:
        assert "7. Chat page streaming" in result.stdout


def test_quick_postgresql_and_replicas_run(tmp_path: Path) -> None:
    """Benchmarks 1, 4, 5 and 6 on PostgreSQL and benchmark 8 (replicas behind nginx) in one run: one
    PostgreSQL server for both."""
    require_postgres()
    redis_binary()
    nginx_binary()
    report = tmp_path / "performance-postgresql.md"
    result = _quick_run("--db", "postgresql", "--only", "1,4,5,6,8", "--output", str(report))
    for title in POSTGRES_TITLES:
        assert title in result.stdout, title
    assert "Non-streaming call, " not in result.stdout, "every table of this run says PostgreSQL"
    assert "scaling ratio 2 ÷ 1 replica" in result.stdout
    lines = result.stdout.splitlines()
    logged = next(line for line in lines if line.startswith("every answered call logged"))
    assert logged.rstrip().endswith("✅"), logged  # a correctness figure, not a timing
    assert "# Performance on PostgreSQL" in report.read_text()
