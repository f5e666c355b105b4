"""Benchmark 6: the admin side with 100k and 1M rows in chat_logs (stats, first pages of the logs filtered
and sorted, CSV)."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.migrate import upgrade
from bench.databases import Database
from bench.harness import gateway, median, rss_mb
from bench.report import Result
from services.rollups import latency_bucket
from tests.postgres_server import libpq_url

MODELS = [f"model-{i}" for i in range(8)]
USERS = 2_000  # a team's population: more calls come from the same people, not from new ones
GUEST_IPS = 5_000
EXPORT_ROUNDS = 3


_COLUMNS = (
    "user_id, username, ip_address, channel_id, model_id, prompt_tokens, completion_tokens, created_at, "
    "status, tokens_estimated, duration_ms"
)
# who was active, as the log writer names them: "u:<user id>" for users, "ip:<address>" for guests
_ACTOR = "CASE WHEN user_id IS NULL THEN 'ip:' || ip_address ELSE 'u:' || user_id END"


def _generated_rows(rows: int) -> Iterator[tuple[Any, ...]]:
    """``rows`` call-log rows (``_COLUMNS``) over 60 days; the same ones on every database."""
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    for _ in range(rows):
        created = now - timedelta(seconds=rng.randrange(60 * 86400))
        user = rng.randrange(1, USERS + 1) if rng.random() < 0.6 else None
        guest = rng.randrange(GUEST_IPS)
        yield (
            user,
            f"user{user}@example.com" if user else None,
            f"10.{guest // 256}.{guest % 256}.1",
            1,
            rng.choice(MODELS),
            rng.randrange(10, 500),
            rng.randrange(10, 2000),
            created,
            "ok",
            False,
            rng.randrange(100, 5000),
        )


def fill_database(url: str, rows: int) -> None:
    """``rows`` call-log rows over 60 days, plus the daily rollups the log writer would have kept, in the
    new database ``url`` (SQLite or PostgreSQL)."""
    upgrade(url)
    if url.startswith("sqlite:///"):
        _fill_sqlite(Path(url.removeprefix("sqlite:///")), rows)
    else:
        _fill_postgres(url, rows)


def _fill_sqlite(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        insert = f"INSERT INTO chat_logs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608
        batch = []
        for row in _generated_rows(rows):
            # the time as SQLAlchemy stores it on SQLite, the flag as 0/1
            batch.append((*row[:7], row[7].isoformat(sep=" "), row[8], int(row[9]), row[10]))
            if len(batch) == 50_000:
                db.executemany(insert, batch)
                batch.clear()
        if batch:
            db.executemany(insert, batch)
        db.execute(
            "INSERT INTO stats_daily_models (day, model_id, calls, prompt_tokens, completion_tokens) "
            "SELECT date(created_at), model_id, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) "
            "FROM chat_logs GROUP BY 1, 2"
        )
        for kind, start in (
            ("d", "date(created_at)"),
            ("w", "date(created_at, '-6 days', 'weekday 1')"),
            ("m", "date(created_at, 'start of month')"),
        ):
            db.execute(
                f"INSERT OR IGNORE INTO stats_period_actors (kind, start, actor) "  # noqa: S608
                f"SELECT '{kind}', {start}, {_ACTOR} FROM chat_logs"
            )
        _fill_dashboard_rollups(db, "date(created_at)")
        db.execute(
            "INSERT INTO system_config (key, value, description, updated_at) "
            "VALUES ('stats_time_zone', 'UTC', 'internal', CURRENT_TIMESTAMP)"
        )
        db.commit()


def _fill_postgres(url: str, rows: int) -> None:
    """As on SQLite, the rows through COPY (psycopg), the rollups in PostgreSQL's own date functions."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as db:
        db.execute("SET TIME ZONE 'UTC'")  # the rows' times and days are UTC's (stats_time_zone below)
        with db.cursor() as cursor, cursor.copy(f"COPY chat_logs ({_COLUMNS}) FROM STDIN") as copy:
            for row in _generated_rows(rows):
                copy.write_row(row)
        db.execute(
            "INSERT INTO stats_daily_models (day, model_id, calls, prompt_tokens, completion_tokens) "
            "SELECT created_at::date, model_id, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) "
            "FROM chat_logs GROUP BY 1, 2"
        )
        for kind, start in (
            ("d", "created_at::date"),
            ("w", "date_trunc('week', created_at)::date"),  # ISO weeks: from Monday
            ("m", "date_trunc('month', created_at)::date"),
        ):
            db.execute(
                f"INSERT INTO stats_period_actors (kind, start, actor) "  # noqa: S608
                f"SELECT DISTINCT '{kind}', {start}, {_ACTOR} FROM chat_logs"
            )
        _fill_dashboard_rollups(db, "created_at::date")
        db.execute(
            "INSERT INTO system_config (key, value, description, updated_at) "
            "VALUES ('stats_time_zone', 'UTC', 'internal', CURRENT_TIMESTAMP)"
        )
    with psycopg.connect(libpq_url(url), autocommit=True) as db:
        # as autovacuum does soon after such a load (its insert threshold), before anything is measured:
        # run during the measurements instead, it took the larger database's figures up and down
        db.execute("VACUUM (ANALYZE)")


def _fill_dashboard_rollups(db: Any, day: str) -> None:
    """What the log writer keeps for the dashboard (revision 0006), from the rows just generated; ``db``:
    a sqlite3 or psycopg connection, ``day``: the SQL of a row's day."""
    mark = "?" if isinstance(db, sqlite3.Connection) else "%s"
    db.execute(
        f"INSERT INTO stats_daily_counts (day, name, count) "  # noqa: S608
        f"SELECT {day}, 'ok', COUNT(*) FROM chat_logs GROUP BY 1"
    )
    db.execute(
        f"INSERT INTO stats_daily_channels (day, channel_id, calls, ok, errors) "  # noqa: S608
        f"SELECT {day}, channel_id, COUNT(*), COUNT(*), 0 FROM chat_logs GROUP BY 1, 2"
    )
    db.execute(
        f"INSERT INTO stats_daily_callers (day, actor, calls) "  # noqa: S608
        f"SELECT {day}, {_ACTOR}, COUNT(*) FROM chat_logs GROUP BY 1, 2"
    )
    buckets: dict[tuple[Any, int], int] = {}
    for when, duration, count in db.execute(
        f"SELECT {day}, duration_ms, COUNT(*) FROM chat_logs GROUP BY 1, 2"  # noqa: S608
    ).fetchall():
        key = (when, latency_bucket(duration))
        buckets[key] = buckets.get(key, 0) + count
    rows = [(when, bucket, count) for (when, bucket), count in buckets.items()]
    columns = "day, metric, bucket, calls"
    sql = f"INSERT INTO stats_daily_latency ({columns}) VALUES ({mark}, 'd', {mark}, {mark})"  # noqa: S608
    if isinstance(db, sqlite3.Connection):
        db.executemany(sql, rows)
    else:
        with db.cursor() as cursor:
            cursor.executemany(sql, rows)


def _time_get(client: httpx.Client, path: str, repeats: int, **params: str) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        samples.append(time.perf_counter() - started)
    return median(samples)


def _export(client: httpx.Client, pid: int) -> tuple[float, int, float]:
    """Seconds, rows and the server's peak RSS growth (MB) for one full CSV export."""
    baseline = rss_mb(pid)
    peak = {"value": baseline}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["value"] = max(peak["value"], rss_mb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    lines = 0
    with client.stream("GET", "/api/admin/logs/export", timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return seconds, lines - 1, peak["value"] - baseline


def _cli_export(url: str, db: Database) -> float | None:
    """Seconds for the database's own command-line client to write the whole table as CSV, newest
    first: ``sqlite3 -csv`` or ``psql`` with ``COPY … TO STDOUT`` (None: no such client installed)."""
    if db.server is None:
        cli = shutil.which("sqlite3")
        if cli is None:
            return None
        command = [
            cli,
            "-csv",
            "-header",
            url.removeprefix("sqlite:///"),
            "SELECT * FROM chat_logs ORDER BY id DESC",
        ]
    else:
        copy = "COPY (SELECT * FROM chat_logs ORDER BY id DESC) TO STDOUT WITH (FORMAT csv, HEADER)"
        command = [str(db.server.psql), "-X", "-q", "-d", libpq_url(url), "-c", copy]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def bench_admin_scale(
    work_dir: Path,
    *,
    small: int,
    large: int,
    repeats: int,
    db: Database | None = None,
    export_rounds: int = EXPORT_ROUNDS,
) -> Result:
    db = db or Database()
    result = Result(f"6. Admin at scale{db.label}: {small:,} vs {large:,} rows in chat_logs")
    result.notes.append(f"rows spread over 60 days, 8 models, {USERS:,} users and {GUEST_IPS:,} guest IPs")
    cli = "sqlite3 CLI" if db.server is None else "psql COPY TO STDOUT"
    urls: dict[int, str] = {}
    data_dirs: dict[int, Path] = {}
    for rows in (small, large):
        data_dirs[rows] = data_dir = work_dir / f"admin-{rows}"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        started = time.perf_counter()
        urls[rows] = db.url(data_dir / "chat.db")
        fill_database(urls[rows], rows)
        result.notes.append(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s")
    # both sizes served at once and asked in turn (which size first alternating): each ratio is taken
    # over the same minutes, not across a fill and the machine's moods in between (runs measured one size
    # after the other gave the same code 1.2 and 1.7, and 2.1 on every endpoint once)
    timings: dict[int, dict[str, float]] = {}
    with ExitStack() as stack:
        clients: dict[int, tuple[Any, httpx.Client]] = {}
        for rows in (small, large):
            env = {} if db.server is None else {"DATABASE_URL": urls[rows]}
            gw = stack.enter_context(gateway(data_dirs[rows], **env))
            clients[rows] = (
                gw,
                stack.enter_context(httpx.Client(base_url=gw.url, headers=gw.admin_headers, timeout=120)),
            )
        day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
        month_ago = (datetime.now(UTC) - timedelta(days=29)).date().isoformat()
        today = datetime.now(UTC).date().isoformat()
        # the first request of a range sums its closed days (kept afterwards, services/stats_callers.py);
        # a week first, so that it is not also the process's first range (≈ 100 ms once)
        week_ago = (datetime.now(UTC) - timedelta(days=6)).date().isoformat()
        for rows, (_gw, client) in clients.items():
            client.get("/api/admin/stats").raise_for_status()  # warm-up
            client.get("/api/admin/stats", params={"start": week_ago, "end": today}).raise_for_status()
            timings[rows] = {
                "stats30_first": _time_get(client, "/api/admin/stats", 1, start=month_ago, end=today)
            }
        requests: dict[str, tuple[str, dict[str, str]]] = {
            "stats": ("/api/admin/stats", {}),
            "stats7": ("/api/admin/stats", {"start": week_ago, "end": today}),
            "stats30": ("/api/admin/stats", {"start": month_ago, "end": today}),
            "logs": ("/api/admin/logs", {"model": "model-3", "start": day, "end": day}),
            # the console's logs page as it opens, and its column sorts, over every row
            "logs_all": ("/api/admin/logs", {}),
            "logs_duration": ("/api/admin/logs", {"sort": "-duration"}),
            "logs_tokens": ("/api/admin/logs", {"sort": "-tokens"}),
        }
        samples: dict[tuple[int, str], list[float]] = {
            (rows, key): [] for rows in clients for key in requests
        }
        for turn in range(repeats):
            for key, (path, params) in requests.items():
                for rows in (small, large) if turn % 2 == 0 else (large, small):
                    client = clients[rows][1]
                    started = time.perf_counter()
                    client.get(path, params=params).raise_for_status()
                    samples[(rows, key)].append(time.perf_counter() - started)
        for (rows, key), taken in samples.items():
            timings[rows][key] = median(taken)
        result.notes.append(f"the two sizes served at once, asked in turn: medians of {repeats}")
        gw, client = clients[large]
        url = urls[large]
        # interleaved rounds, the median ratio: one export each swung the ratio by ±15 %
        rounds = [(*_export(client, gw.pid), _cli_export(url, db)) for _ in range(export_rounds)]
        seconds = median([r[0] for r in rounds])
        exported = min(r[1] for r in rounds)
        growth = max(r[2] for r in rounds)
        timings[large].update(export=seconds, exported=exported, growth=growth)
        result.add("CSV export rows", exported, f"{large:,}", exported == large)
        result.add("CSV export throughput", exported / seconds, unit="rows/s")
        result.add("server memory growth during export", growth, "≤ 64 MB", growth <= 64, unit="MB")
        cli_times = [r[3] for r in rounds if r[3] is not None]
        if cli_times:
            ratio = median([cli / r[0] for r, cli in zip(rounds, cli_times, strict=True)])
            result.add(f"{cli} CSV export", large / median(cli_times), unit="rows/s")
            result.add(f"export throughput ÷ {cli}", ratio, "≥ 0.333", ratio >= 1 / 3)
            result.notes.append(f"CSV export and {cli}: {export_rounds} interleaved rounds, medians")
        else:
            result.notes.append(f"{cli} not installed: CLI comparison skipped")
    first_small, first_large = (1000 * timings[n]["stats30_first"] for n in (small, large))
    result.add(
        f"/api/admin/stats, a 30-day range, its first request: {small:,} / {large:,} rows",
        f"{first_small:.1f} / {first_large:.1f}",
        unit="ms",
    )
    result.add("  its first request: time at the larger ÷ at the smaller", first_large / first_small)
    for key, label in (
        ("stats", "/api/admin/stats"),
        ("stats7", "/api/admin/stats, a 7-day range"),
        ("stats30", "/api/admin/stats, a 30-day range (the dashboard's figures)"),
        ("logs", "/api/admin/logs first page, model + day filter"),
        ("logs_all", "/api/admin/logs first page, no filter, newest first"),
        ("logs_duration", "/api/admin/logs first page, no filter, longest first"),
        ("logs_tokens", "/api/admin/logs first page, no filter, most tokens first"),
    ):
        ratio = timings[large][key] / timings[small][key]
        result.add(
            f"{label}: {small:,} / {large:,} rows",
            f"{1000 * timings[small][key]:.1f} / {1000 * timings[large][key]:.1f}",
            unit="ms",
        )
        result.add(f"{label}: time at {large:,} ÷ at {small:,}", ratio, "≤ 1.5", ratio <= 1.5)
    return result
