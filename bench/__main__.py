"""``python -m bench``: run the benchmarks, print their tables, write docs/performance.md.

``python -m bench --quick`` runs every benchmark at a tiny size (the test suite does this so the code
cannot rot); its figures mean nothing. ``--only 1,6`` picks benchmarks. ``--db postgresql`` runs the
ones that depend on the database (1, 4, 5, 6) against a throwaway PostgreSQL server instead of SQLite
(report: docs/performance-postgresql.md). Benchmark 8 (replicas behind nginx, always on PostgreSQL and
Redis) runs in a full run or when asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import admin_bench, gateway_bench, limits_bench, logs_bench, page_bench, page_speed, replicas_bench
from bench.databases import CHOICES, Database, database
from bench.harness import Gateway, gateway, machine_description, upstream_process
from bench.report import Result
from tests import zygote
from tests.helpers import ROOT
from tests.redis_server import run_redis


@dataclass(frozen=True)
class Sizes:
    rounds: int = 9
    per_round: int = 60
    warmups: int = 5  # requests to each target before benchmark 1's (and 4, 5, 7's) rounds
    stream_rounds: int = 15
    ttft_samples: int = 200
    chunks: int = 64
    streams: int = 64
    concurrent_rounds: int = 3
    exact_runs: int = 20
    exact_limits: tuple[int, ...] = (1, 5, 60)
    log_rows: int = 100_000
    baseline_rows: int = 2_000
    admin_small: int = 100_000
    admin_large: int = 1_000_000
    admin_repeats: int = 15
    admin_export_rounds: int = admin_bench.EXPORT_ROUNDS
    page_tokens: int = 3_000
    page_pace_ms: int = 20
    pages: int = 20
    page_settle_seconds: float = 3.0
    page_messages: int = 100
    page_cold_loads: int = 5
    page_new_chat_every: int = page_speed.NEW_CHAT_EVERY
    replica_counts: tuple[int, ...] = (1, 2, 4)
    throughput_concurrency: int = 64
    throughput_seconds: float = 20.0
    postgres_fsync: bool = True  # off: a quick run's PostgreSQL server syncs nothing, as the tests' servers
    wall_times: bool = False  # print each phase's wall time (quick runs: where a smoke run's time goes)


QUICK = Sizes(
    rounds=2,
    per_round=3,
    warmups=1,
    stream_rounds=2,
    ttft_samples=4,
    chunks=8,
    streams=4,
    concurrent_rounds=1,
    exact_runs=1,
    exact_limits=(1, 5),
    log_rows=500,
    baseline_rows=20,
    admin_small=200,
    admin_large=1_000,
    admin_repeats=1,
    admin_export_rounds=1,
    page_tokens=40,
    page_pace_ms=5,
    pages=1,
    page_settle_seconds=0.0,
    page_messages=2,
    page_cold_loads=1,
    page_new_chat_every=1,  # the second message in a new chat: that path runs too
    replica_counts=(1, 2),
    throughput_concurrency=4,
    throughput_seconds=0.25,
    postgres_fsync=False,
    wall_times=True,
)
ON_DATABASE = (1, 4, 5, 6)  # what --db changes; the others barely touch the database


def against_off_switch(
    gw: Gateway, upstream: str, work: Path, sizes: Sizes, flag: str, what: str, number: str, db: Database
) -> Result:
    """Latency of ``gw`` against a second gateway started with ``flag`` (that feature replaced by a no-op)."""
    with gateway(work / flag.strip("-"), flag, **db.gateway_env()) as off:
        off.add_channel("bench-delay", f"{upstream}/delay-50/v1")
        return asyncio.run(
            gateway_bench.bench_on_off(
                gw,
                off,
                what=what,
                number=number,
                rounds=sizes.rounds,
                per_round=sizes.per_round,
                database=db.label,
                warmups=sizes.warmups,
            )
        )


def run(sizes: Sizes, only: set[int] | None, work: Path, db: Database | None = None) -> list[Result]:
    """The benchmarks in ``only`` (all: None) on ``db`` (SQLite: None); with PostgreSQL, those that barely
    touch the database (2, 3, 7) are left out: their figures would be SQLite's."""
    db = db or Database()

    def wanted(number: int) -> bool:
        if db.server is not None and number not in (*ON_DATABASE, 8):
            return False
        return only is None or number in only

    results: list[Result] = []
    clock = [time.perf_counter()]

    def lap(what: str) -> None:
        """With ``sizes.wall_times``: the wall time since the previous lap, ``what`` took it."""
        now = time.perf_counter()
        if sizes.wall_times:
            print(f"wall time: {now - clock[0]:.1f} s {what}", flush=True)
        clock[0] = now

    def done(result: Result) -> None:
        lap(f"for {result.title!r}")
        print(result.text(), flush=True)
        results.append(result)

    if db.server is not None:
        skipped = sorted(n for n in (2, 3, 7) if only is None or n in only)
        if skipped:
            print(
                f"{', '.join(map(str, skipped))}. skipped with --db postgresql: streams and pages barely "
                "touch the database (a call's row is written in batches off the request path); "
                "their figures are the SQLite run's\n",
                flush=True,
            )
    with upstream_process() as upstream:
        if any(wanted(n) for n in (1, 2, 3, 4, 5)):
            with gateway(work / "gateway", TRUSTED_PROXIES="127.0.0.1/32", **db.gateway_env()) as gw:
                gw.add_channel("bench-delay", f"{upstream}/delay-50/v1")
                gw.add_channel("bench-fast", f"{upstream}/delay-0/v1")
                gw.add_channel(f"bench-stream-{sizes.chunks}", f"{upstream}/slow-20-{sizes.chunks}/v1")
                gw.add_channel("bench-first-token", f"{upstream}/slow-20-2/v1")
                lap("starting the upstream and the gateway")
                if wanted(1):
                    done(
                        asyncio.run(
                            gateway_bench.bench_nonstream(
                                gw,
                                upstream,
                                rounds=sizes.rounds,
                                per_round=sizes.per_round,
                                database=db.label,
                                warmups=sizes.warmups,
                            )
                        )
                    )
                if wanted(2):
                    done(
                        asyncio.run(
                            gateway_bench.bench_one_stream(
                                gw,
                                upstream,
                                rounds=sizes.stream_rounds,
                                chunks=sizes.chunks,
                                ttft_samples=sizes.ttft_samples,
                            )
                        )
                    )
                if wanted(3):
                    done(
                        asyncio.run(
                            gateway_bench.bench_concurrent(
                                gw,
                                upstream,
                                streams=sizes.streams,
                                chunks=sizes.chunks,
                                rounds=sizes.concurrent_rounds,
                            )
                        )
                    )
                if wanted(4):
                    done(
                        asyncio.run(
                            limits_bench.bench_exactness(
                                gw,
                                "memory",
                                runs=sizes.exact_runs,
                                limits=sizes.exact_limits,
                                database=db.label,
                            )
                        )
                    )
                    done(against_off_switch(gw, upstream, work, sizes, "--no-limits", "rate limits", "4", db))
                if wanted(5):
                    done(
                        against_off_switch(gw, upstream, work, sizes, "--no-logging", "call logging", "5", db)
                    )
        if wanted(4):
            with (
                run_redis(work) as redis_url,
                gateway(
                    work / "redis",
                    TRUSTED_PROXIES="127.0.0.1/32",
                    RATE_LIMIT_STORAGE=redis_url,
                    **db.gateway_env(),
                ) as gw,
            ):
                gw.add_channel("bench-fast", f"{upstream}/delay-0/v1")
                lap("starting redis-server and its gateway")
                done(
                    asyncio.run(
                        limits_bench.bench_exactness(
                            gw, "Redis", runs=sizes.exact_runs, limits=sizes.exact_limits, database=db.label
                        )
                    )
                )
    if wanted(5):
        done(
            logs_bench.bench_log_inserts(work, rows=sizes.log_rows, baseline_rows=sizes.baseline_rows, db=db)
        )
    if wanted(6):
        done(
            admin_bench.bench_admin_scale(
                work,
                small=sizes.admin_small,
                large=sizes.admin_large,
                repeats=sizes.admin_repeats,
                db=db,
                export_rounds=sizes.admin_export_rounds,
            )
        )
    if wanted(8) and replicas_bench.missing() is not None:
        print(f"8. skipped: {replicas_bench.missing()}", flush=True)
    elif wanted(8):
        postgres = (
            database("postgresql", durable=sizes.postgres_fsync) if db.server is None else nullcontext(db)
        )
        with upstream_process() as upstream, postgres as pg:
            assert pg.server is not None
            lap("starting the upstream (and PostgreSQL)")
            done(
                replicas_bench.bench_replicas(
                    work,
                    pg.server,
                    upstream,
                    replica_counts=sizes.replica_counts,
                    concurrency=sizes.throughput_concurrency,
                    seconds=sizes.throughput_seconds,
                )
            )
    if wanted(7):  # last: a score of browser tabs is the heaviest load on the machine
        if not page_bench.chromium_available():
            print("7. skipped: Debian's chromium and chromium-driver are not installed", flush=True)
        else:
            with upstream_process() as upstream, gateway(work / "pages") as gw:
                gw.add_channel("bench-delay", f"{upstream}/delay-50/v1")
                lap("starting the upstream and the pages' gateway")
                done(  # first: the 20 tabs of the next one leave the machine busy for a while
                    page_speed.bench_page_speed(
                        gw,
                        upstream,
                        messages=sizes.page_messages,
                        cold_loads=sizes.page_cold_loads,
                        new_chat_every=sizes.page_new_chat_every,
                    )
                )
                done(
                    page_bench.bench_page(
                        gw,
                        upstream,
                        tokens=sizes.page_tokens,
                        pace_ms=sizes.page_pace_ms,
                        pages=sizes.pages,
                        rounds=sizes.rounds,
                        per_round=sizes.per_round,
                        settle_seconds=sizes.page_settle_seconds,
                        warmups=sizes.warmups,
                    )
                )
    return results


def write_report(
    results: list[Result], path: Path, seconds: float, db: Database | None = None, *, fsync: bool = True
) -> None:
    db = db or Database()
    passed = sum(r.passed for r in results)
    text = [
        "# Performance" + ("" if db.server is None else f" on {db.name}"),
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}.",
        f"{passed} of {len(results)} benchmark tables meet every target; "
        f"the whole run took {seconds / 60:.1f} min.",
        "",
        "Every figure is a comparison made in the same run: the gateway against the same loopback",
        "OpenAI-compatible upstream (`tests/upstream_server.py`, its own process) called directly, or",
        "the gateway with a feature on against the same gateway with it replaced by a no-op",
        "(`bench/serve.py`). Ratios are medians over interleaved rounds. Client, gateway and upstream",
        "share the machine's cores.",
        "",
    ]
    if db.server is not None:
        text += [
            "Benchmarks 1, 4, 5 and 6 here run on a PostgreSQL server of this machine (Debian's, a",
            "throwaway cluster started as the tests start theirs, with fsync "
            + ("on" if fsync else "off (a quick run)")
            + " and",
            "`synchronous_commit=off`, as SQLite runs in WAL mode with `synchronous=NORMAL`), each gateway",
            "on a new database of it.",
            "Benchmarks 2, 3 and 7 barely touch the database: see the SQLite report.",
            "",
        ]
    text += [
        "Reproduce: `.venv/bin/python -m bench` (all, about a quarter of an hour),",
        "`.venv/bin/python -m bench --only 1,6` (some) or `.venv/bin/python -m bench --db postgresql`",
        "(1, 4, 5, 6 and 8 on PostgreSQL).",
        "",
    ]
    text += [result.markdown() for result in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (smoke run; figures are meaningless)"
    )
    parser.add_argument("--only", help="comma-separated benchmark numbers, e.g. 1,2,6")
    parser.add_argument(
        "--db",
        choices=CHOICES,
        default="sqlite",
        help="the database of benchmarks 1, 4, 5 and 6 (postgresql: a throwaway local server; "
        "2, 3 and 7 are then skipped)",
    )
    parser.add_argument(
        "--admin-large", type=int, help="rows of benchmark 6's large database (default 1,000,000; 10,000,000)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="report file (default docs/performance.md, docs/performance-postgresql.md with --db "
        "postgresql; none with --quick)",
    )
    args = parser.parse_args()
    if args.quick:  # a smoke run measures nothing: its gateways fork from one process (tests/zygote.py)
        os.environ.setdefault("PYAICHAT_TEST_FORK", "1")
        if os.environ["PYAICHAT_TEST_FORK"] == "1":
            zygote.start()
    only = {int(n) for n in args.only.split(",")} if args.only else None
    started = time.perf_counter()
    try:
        sizes = QUICK if args.quick else Sizes()
        if args.admin_large:
            sizes = dataclasses.replace(sizes, admin_large=args.admin_large)
        with (
            tempfile.TemporaryDirectory(prefix="pyaichat-bench-") as work,
            database(args.db, durable=sizes.postgres_fsync) as db,
        ):
            if sizes.wall_times:
                print(f"wall time: {time.perf_counter() - started:.1f} s starting the database", flush=True)
            results = run(sizes, only, Path(work), db)
    except (pytest.skip.Exception, pytest.fail.Exception) as missing:  # PostgreSQL, nginx, redis-server
        sys.exit(f"python -m bench: {missing}")
    if sizes.wall_times:
        print(f"wall time: {time.perf_counter() - started:.1f} s in all", flush=True)
    report = "performance.md" if args.db == "sqlite" else "performance-postgresql.md"
    output = args.output or (None if args.quick else ROOT / "docs" / report)
    if output is not None:
        write_report(results, output, time.perf_counter() - started, db, fsync=sizes.postgres_fsync)
        print(f"report written to {output}")


if __name__ == "__main__":
    main()
