"""Benchmarks 1, 4, 5 and 6 on PostgreSQL and benchmark 8 at a tiny size, so their code cannot rot. No
timing is asserted. A file of its own, so that it runs next to the SQLite run (tests/test_bench.py) on
another worker rather than after it."""

from __future__ import annotations

from pathlib import Path

from tests.postgres_server import require_postgres
from tests.redis_server import redis_binary
from tests.replicas import nginx_binary
from tests.test_bench import CORRECT, _quick_run, assert_correct

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
    assert_correct(result.stdout, CORRECT)
    lines = result.stdout.splitlines()
    logged = next(line for line in lines if line.startswith("every answered call logged"))
    assert logged.rstrip().endswith("✅"), logged  # a correctness figure, not a timing
    assert "# Performance on PostgreSQL" in report.read_text()
