"""The abuse probe of docs/reliability/abuse.md: what an attacker sees at the sign-in, the registration, a
frozen Redis and the browser-session files. Prints the figures; asserts nothing (the tests do).

    .venv/bin/python -m bench.abuse_probe [--browser]

Starts its own app (memory storage, then Redis storage with a redis-server it freezes with SIGSTOP) on
loopback with ``TRUSTED_PROXIES=127.0.0.1/32`` so that each request can be its own client IP.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, production_env, run_app, wait_until
from tests.redis_server import run_redis_process
from tests.upstream_server import UpstreamServer

_ip_counter = itertools.count(1)
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


def fresh_ip() -> str:
    n = next(_ip_counter)
    return f"198.18.{n // 250}.{n % 250 + 1}"


def tally(statuses: list[int]) -> str:
    return ", ".join(f"{code}×{count}" for code, count in sorted(collections.Counter(statuses).items()))


async def parallel(base_url: str, path: str, bodies: list[dict], ips: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=len(bodies), keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_SECONDS, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(path, json=body, headers={"X-Forwarded-For": ip})
                for body, ip in zip(bodies, ips, strict=True)
            )
        )
    return [r.status_code for r in responses]


def probe_logins(base_url: str, http: httpx.Client) -> None:
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    http.post(
        "/api/auth/register",
        json={"email": email, "password": "password-1"},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    wrong = {"email": email, "password": "wrong-password"}
    statuses = asyncio.run(
        parallel(base_url, "/api/auth/login", [wrong] * 60, [fresh_ip() for _ in range(60)])
    )
    print(f"  60 parallel wrong user logins, one account, 60 IPs: {tally(statuses)}")
    admin_wrong = {"username": "admin", "password": "wrong-password"}
    one_ip = fresh_ip()
    statuses = asyncio.run(parallel(base_url, "/api/auth/admin/login", [admin_wrong] * 60, [one_ip] * 60))
    print(f"  60 parallel wrong admin logins, one IP: {tally(statuses)}")
    real = http.post(
        "/api/auth/admin/login",
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    print(f"  then the real admin from another IP: {real.status_code}")


def probe_registration(http: httpx.Client) -> None:
    ip = fresh_ip()
    started = time.monotonic()
    statuses = [
        http.post(
            "/api/auth/register",
            json={"email": f"bulk-{uuid.uuid4().hex[:10]}@example.com", "password": "password-1"},
            headers={"X-Forwarded-For": ip},
        ).status_code
        for _ in range(20)
    ]
    print(f"  20 registrations from one IP in {time.monotonic() - started:.1f} s: {tally(statuses)}")


def probe_control_characters(http: httpx.Client, log_path: Path) -> None:
    cases = [
        (
            "/api/auth/register",
            {"email": f"nul-{uuid.uuid4().hex[:8]}@example.com", "password": "pass\x00word-1"},
        ),
        ("/api/auth/login", {"email": "nul@example.com", "password": "pass\x00word-1"}),
        ("/api/auth/admin/login", {"username": "admin", "password": "pass\x00word-1"}),
        ("/api/auth/admin/login", {"username": "ad\x00min", "password": "password-1"}),
    ]
    for path, body in cases:
        before = log_path.stat().st_size
        try:
            response = http.post(path, json=body, headers={"X-Forwarded-For": fresh_ip()})
            outcome = f"{response.status_code} {response.text[:90]}"
        except httpx.HTTPError as exc:
            outcome = f"{type(exc).__name__}"
        for _attempt in range(2):  # the first may reuse the connection that a 500 reset
            try:  # once its answer is back, anything logged for the case is written
                http.get("/api/health")
                break
            except httpx.HTTPError:
                continue
        grown = log_path.stat().st_size - before
        field = "username" if "\x00" in body.get("username", "") else "password"
        print(f"  NUL in {field} at {path}: {outcome}; log grew {grown} bytes")


def probe_frozen_redis(base_url: str, http: httpx.Client, redis: subprocess.Popen[bytes], model: str) -> None:
    body = chat_body(model, stream=False)
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        rows = []
        for _ in range(10):
            started = time.monotonic()
            response = http.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": fresh_ip()})
            rows.append(
                (response.status_code, time.monotonic() - started, response.headers.get("Retry-After"))
            )
        times = sorted(t for _, t, _ in rows)
        print(
            f"  frozen Redis, 10 chat calls: {tally([s for s, _, _ in rows])}; "
            f"first {rows[0][1] * 1000:.0f} ms, median {times[5] * 1000:.0f} ms, "
            f"max {times[-1] * 1000:.0f} ms, "
            f"Retry-After {rows[0][2]}"
        )
        ip = fresh_ip()
        statuses = []
        started = time.monotonic()
        for _ in range(13):
            statuses.append(
                http.post(
                    "/api/auth/admin/login",
                    json={"username": "admin", "password": "wrong-password"},
                    headers={"X-Forwarded-For": ip},
                ).status_code
            )
        print(
            f"  frozen Redis, 13 wrong admin logins from one IP: {tally(statuses)} "
            f"in {time.monotonic() - started:.1f} s"
        )
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        response = http.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": fresh_ip()})
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(f"  Redis thawed: chat answers {response.status_code}")


def probe_admin_password_change(data_dir: Path, env: dict[str, str], token: str) -> None:
    changed = {**env, "ADMIN_PASSWORD": "another-admin-password-456"}
    with run_app(changed, log_path=data_dir / "restart.log") as app:
        status = httpx.get(
            f"{app.base_url}/api/admin/config",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HANG_SECONDS,
        ).status_code
    print(f"  old admin token after ADMIN_PASSWORD changed (restart): {status}")


def probe_session_files(base_url: str, data_dir: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser.conftest import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="probe-chromium-")
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(base_url + "/admin/login")
        wait = WebDriverWait(driver, HANG_SECONDS)
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input[autocomplete=username]")))
        driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]").send_keys("admin")
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(
            TEST_ADMIN_PASSWORD, Keys.ENTER
        )
        wait.until(EC.url_to_be(base_url + "/admin/dashboard"))
        storage = data_dir / ".nicegui"
        # NiceGUI writes the file in the background
        wait_until(
            lambda: any("admin_token" in p.read_text() for p in storage.glob("storage-user-*.json")),
            poll=0.1,
            what="the session file",
        )
    finally:
        driver.quit()
    print(f"  {storage}: mode {stat.filemode(storage.stat().st_mode)}")
    for path in sorted(storage.glob("storage-user-*.json")):
        text = path.read_text()
        print(
            f"  {path.name}: mode {stat.filemode(path.stat().st_mode)}, "
            f"holds a JWT in clear: {bool(JWT.search(text))}, {len(text)} bytes"
        )


async def _bystander(base_url: str, key: str, model: str, until: asyncio.Event) -> list[float]:
    """A signed-in bystander (own IP, a good key) chatting while the flood runs: each call's seconds."""
    took: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": fresh_ip()}
    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_SECONDS, headers=headers) as client:
        while not until.is_set() or len(took) < 20:
            started = time.perf_counter()
            response = await client.post("/api/chat/completions", json=chat_body(model, stream=False))
            took.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            if len(took) >= 2000:
                break
    return took


async def _flood(
    base_url: str, count: int, ip: str, concurrency: int, rate: float
) -> tuple[list[int], float]:
    """``count`` requests with random keys from ``ip``, ``rate`` per second (0: as fast as they go)."""
    statuses: list[int] = []
    keys = iter(range(count))
    started = time.monotonic()

    async def worker(client: httpx.AsyncClient) -> None:
        for index in keys:
            if rate:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            headers = {
                "X-Forwarded-For": ip,
                "Authorization": f"Bearer sk-{uuid.uuid4().hex}{uuid.uuid4().hex}",
            }
            statuses.append((await client.get("/api/models", headers=headers)).status_code)

    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_SECONDS) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses, time.monotonic() - started


def _flood_in_process(base_url: str, count: int, ip: str, rate: float) -> tuple[list[int], float]:
    """The flood in a process of its own: in the bystander's event loop it would delay the bystander's
    own requests, and the probe would measure itself."""
    return asyncio.run(_flood(base_url, count, ip, concurrency=20, rate=rate))


def _quantiles(took: list[float]) -> str:
    ordered = sorted(took)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(ordered)} calls"


def probe_bad_key_flood(
    base_url: str,
    http: httpx.Client,
    admin: str,
    db_path: Path,
    count: int,
    upstream_url: str,
    rate: float,
) -> None:
    """``count`` random ``sk-…`` keys from one IP at ``rate`` per second (issue 18: 10,000 a minute): all
    refused (401, then 429 once the IP is throttled), no row anywhere, and a bystander's calls as fast as
    without the flood."""
    import multiprocessing
    import sqlite3
    from concurrent.futures import ProcessPoolExecutor

    model = unique_model("flood")
    headers = {"Authorization": f"Bearer {admin}"}
    add_channel(http, headers, base_url=upstream_url, model=model, rpm_limit=1_000_000)
    http.put("/api/admin/config", json={"user_rpm": 1_000_000}, headers=headers)
    email = f"bystander-{uuid.uuid4().hex[:8]}@example.com"
    http.post(
        "/api/auth/register",
        json={"email": email, "password": "password-1"},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    token = http.post(
        "/api/auth/login",
        json={"email": email, "password": "password-1"},
        headers={"X-Forwarded-For": fresh_ip()},
    ).json()["access_token"]
    key = http.post("/api/keys", json={"name": "probe"}, headers={"Authorization": f"Bearer {token}"}).json()[
        "key"
    ]

    def rows() -> dict[str, int]:
        with sqlite3.connect(db_path) as db:
            return {
                t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608 (our table names)
                for t in ("chat_logs", "api_keys", "blocked_attempts", "audit_logs")
            }

    async def run() -> tuple[list[float], list[float], list[int], float]:
        done = asyncio.Event()
        done.set()
        quiet = await _bystander(base_url, key, model, done)  # 20 calls without the flood
        done = asyncio.Event()
        chatting = asyncio.create_task(_bystander(base_url, key, model, done))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as flooder:
            flood = asyncio.get_running_loop().run_in_executor(
                flooder, _flood_in_process, base_url, count, fresh_ip(), rate
            )
            statuses, seconds = await flood
        done.set()
        return quiet, await chatting, statuses, seconds

    before = rows()
    quiet, busy, statuses, seconds = asyncio.run(run())
    after = rows()
    print(
        f"  {count} random keys from one IP in {seconds:.1f} s ({count / seconds:.0f}/s): {tally(statuses)}"
    )
    print(f"  bystander without the flood: {_quantiles(quiet)}")
    print(f"  bystander during the flood:  {_quantiles(busy)}")
    grown = {t: after[t] - before[t] for t in after}
    print(f"  rows written meanwhile: {grown} (chat_logs = the bystander's calls: {len(quiet) + len(busy)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--browser", action="store_true", help="also sign in with Chromium and read the files"
    )
    parser.add_argument("--keys", type=int, default=10_000, help="random keys of the bad-key flood")
    parser.add_argument("--only-keys", action="store_true", help="only the bad-key flood")
    parser.add_argument(
        "--rate",
        type=float,
        default=10_000 / 60,
        help="bad keys per second (default 10,000 a minute; 0: flat out)",
    )
    args = parser.parse_args()
    upstream = UpstreamServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="abuse-probe-") as tmp:
            work = Path(tmp)
            print("memory:// storage")
            data_dir = work / "memory"
            env = production_env(data_dir, TRUSTED_PROXIES="127.0.0.1/32")
            with (
                run_app(env, log_path=work / "memory.log") as app,
                httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http,
            ):
                token = http.post(
                    "/api/auth/admin/login",
                    json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
                    headers={"X-Forwarded-For": fresh_ip()},
                ).json()["access_token"]
                probe_bad_key_flood(
                    app.base_url, http, token, app.db_path, args.keys, upstream.base_url("ok"), args.rate
                )
                if args.only_keys:
                    return
                probe_control_characters(http, app.log_path)
                probe_registration(http)
                token = http.post(
                    "/api/auth/admin/login",
                    json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
                    headers={"X-Forwarded-For": fresh_ip()},
                ).json()["access_token"]
                if args.browser:
                    probe_session_files(app.base_url, data_dir)
                probe_logins(app.base_url, http)
            probe_admin_password_change(data_dir, env, token)
            print("redis:// storage")
            with run_redis_process(work) as (redis_url, redis):
                env = production_env(
                    work / "redis", TRUSTED_PROXIES="127.0.0.1/32", RATE_LIMIT_STORAGE=redis_url
                )
                with (
                    run_app(env, log_path=work / "redis.log") as app,
                    httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http,
                ):
                    admin = http.post(
                        "/api/auth/admin/login",
                        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
                        headers={"X-Forwarded-For": fresh_ip()},
                    ).json()["access_token"]
                    probe_logins(app.base_url, http)
                    channel = add_channel(
                        http,
                        {"Authorization": f"Bearer {admin}"},
                        base_url=upstream.base_url("ok"),
                        model=unique_model("probe"),
                        rpm_limit=1_000_000,
                    )
                    http.put(
                        "/api/admin/config",
                        json={"guest_rpm": 1_000_000},
                        headers={"Authorization": f"Bearer {admin}"},
                    )
                    probe_frozen_redis(app.base_url, http, redis, channel["model_id"])
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
