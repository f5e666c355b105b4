"""Processes and numbers shared by the benchmarks: the loopback upstream, the gateway, percentiles."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import (
    HANG_SECONDS,
    ROOT,
    TEST_ADMIN_PASSWORD,
    RunningApp,
    free_port,
    hung,
    production_env,
    run_app,
    stop_process,
)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def upstream_process() -> Iterator[str]:
    """The loopback OpenAI-compatible server in its own process; yields its root URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.upstream_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + HANG_SECONDS  # it listens once started, however long that takes
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"the upstream server exited with {process.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(hung("the upstream server runs but did not listen")) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, name="upstream server")


@dataclass
class Gateway:
    app: RunningApp
    admin_headers: dict[str, str]

    @property
    def url(self) -> str:
        return self.app.base_url

    @property
    def pid(self) -> int:
        return self.app.process.pid

    def add_channel(self, model: str, upstream_base_url: str, rpm_limit: int = 1_000_000) -> None:
        response = httpx.post(
            f"{self.url}/api/admin/channels",
            timeout=HANG_SECONDS,
            headers=self.admin_headers,
            json={
                "name": model,
                "base_url": upstream_base_url,
                "api_key": "sk-bench-key-0123456789",
                "model_id": model,
                "rpm_limit": rpm_limit,
            },
        )
        response.raise_for_status()

    def personal_key(self) -> str:
        """A new user's personal API key (``sk-…``), made as the user would: register, sign in, create."""
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        with httpx.Client(base_url=self.url, timeout=HANG_SECONDS) as http:
            credentials = {"email": email, "password": "bench-password"}
            http.post("/api/auth/register", json=credentials).raise_for_status()
            login = http.post("/api/auth/login", json=credentials)
            login.raise_for_status()
            made = http.post(
                "/api/keys",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            )
            made.raise_for_status()
            return str(made.json()["key"])

    def set_config(self, **values: int) -> None:
        httpx.put(
            f"{self.url}/api/admin/config", timeout=HANG_SECONDS, json=values, headers=self.admin_headers
        ).raise_for_status()


@contextmanager
def gateway(data_dir: Path, *flags: str, cwd: Path = ROOT, **env: str) -> Iterator[Gateway]:
    """The real app (``bench.serve``) on a fresh database, with the caller limits out of the way;
    ``cwd``: the checkout whose code it runs (another one for comparisons, ``bench.profile_call``).

    With a ``DATABASE_URL`` the app keeps its call-log journal in ./data of its working directory: it
    runs in ``data_dir`` then (the checkout on its PYTHONPATH), so no two gateways share a journal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    environ = production_env(data_dir, GUEST_RPM="1000000", USER_RPM="1000000", **env)
    run_in = cwd
    if "DATABASE_URL" in env:
        path = environ.get("PYTHONPATH", "")
        if str(cwd) not in path.split(os.pathsep):  # as it is: a quick run's gateways fork (tests/zygote.py)
            environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), path]))
        run_in = data_dir
    with run_app(
        environ, log_path=data_dir / "app.log", cwd=run_in, module_args=("bench.serve", *flags)
    ) as app:
        token = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            timeout=HANG_SECONDS,
            json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        ).json()["access_token"]
        yield Gateway(app, {"Authorization": f"Bearer {token}"})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def stat_cpu_seconds(stat: str) -> float:
    """User + system CPU time from the text of a /proc/<pid>/stat file."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_description() -> str:
    import httpx as _httpx
    import nicegui
    import sqlalchemy

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, NiceGUI {nicegui.__version__}, "
        f"httpx {_httpx.__version__}, SQLAlchemy {sqlalchemy.__version__}, {platform.platform()}"
    )
