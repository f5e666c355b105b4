"""The replica setup of deploy/ with real processes (no Docker): app replicas on one PostgreSQL database
(and whatever redis-server the caller gives them), behind Debian's nginx running deploy/nginx.conf itself
(only its ``server app:8000`` lines and its ``listen`` are replaced by loopback addresses). Shared by
tests/test_replicas.py and benchmark 8 (bench/replicas_bench.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    HANG_SECONDS,
    ROOT,
    TEST_ADMIN_PASSWORD,
    RunningApp,
    free_port,
    production_env,
    run_app,
    stop_process,
    wait_until,
    wait_until_ready,
)
from tests.postgres_server import libpq_url

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if Path(p).exists()), None
    )
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing in CI (.ci/run installs Debian's nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return path


def render_nginx_conf(replica_ports: list[int], listen_port: int) -> str:
    """deploy/nginx.conf with each ``server app:8000 …;`` line repeated for the given replicas and
    ``listen 80`` on a loopback port: every other directive is the deployed file's."""
    text = NGINX_CONF.read_text(encoding="utf-8")

    def servers(match: re.Match[str]) -> str:
        indent, rest = match.group(1), match.group(2)
        return "\n".join(f"{indent}server 127.0.0.1:{port}{rest}" for port in replica_ports)

    rendered, count = re.subn(r"(?m)^(\s*)server app:8000(.*)$", servers, text)
    assert count == 2, "deploy/nginx.conf has the pages' and the API's upstream, one `server app:8000` each"
    rendered, count = re.subn(r"(?m)^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{listen_port};", rendered)
    assert count == 1
    return rendered


@dataclass
class Nginx:
    work: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf(self) -> Path:
        return self.work / "nginx.conf"

    def globals(self) -> str:
        # as root, the workers stay root: they read nothing but what the master opened, and the temp
        # files stay writable; not daemon, so the test owns the process
        user = "user root; " if os.geteuid() == 0 else ""
        return f"{user}daemon off; pid {self.work / 'nginx.pid'};"

    def check(self) -> None:
        """``nginx -t`` on the rendered file: the deployed file's syntax and directives are valid."""
        result = subprocess.run(
            [nginx_binary(), "-t", "-p", str(self.work), "-c", str(self.conf), "-g", self.globals()],
            capture_output=True,
            text=True,
            timeout=HANG_SECONDS,
            check=False,
        )
        assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr

    def start(self) -> None:
        with (self.work / "access.log").open("ab") as out, (self.work / "error.log").open("ab") as err:
            self.process = subprocess.Popen(
                [nginx_binary(), "-p", str(self.work), "-c", str(self.conf), "-g", self.globals()],
                stdout=out,  # access_log /dev/stdout
                stderr=err,
            )

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.error_log()
            try:
                return httpx.get(f"{self.url}/api/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, poll=0.1, what="nginx answering /api/health from a replica")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, name="nginx")

    def error_log(self) -> str:
        return (self.work / "error.log").read_text(errors="replace")

    def access_lines(self) -> list[dict[str, str]]:
        """The access log, parsed: method, path, status, host, upstream (the replica's address; several,
        comma-separated, when nginx moved on from one that failed)."""
        pattern = re.compile(
            r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) \d+ host=(?P<host>\S+) '
            r"upstream=(?P<upstream>.*?) upstream_status="
        )
        text = (self.work / "access.log").read_text(errors="replace")
        return [m.groupdict() for m in map(pattern.search, text.splitlines()) if m]


@dataclass
class Deployment:
    """Replicas of ``python -m app`` on their loopback ports, in one working directory, behind nginx."""

    database_url: str
    nginx: Nginx
    env: dict[str, str]
    work: Path
    logs: Path
    ports: list[int]
    stack: ExitStack
    apps: list[RunningApp] = field(default_factory=list)
    admin: dict[str, str] = field(default_factory=dict)
    runs: Counter[int] = field(default_factory=Counter)

    def start_replica(self, index: int) -> RunningApp:
        """Replica ``index`` on its port, in the shared working directory (./data: the journal slots)."""
        self.runs[index] += 1
        log = self.logs / f"replica-{index}-run-{self.runs[index]}.log"
        env = {**self.env, "APP_PORT": str(self.ports[index])}
        return self.stack.enter_context(run_app(env, log_path=log, cwd=self.work, ready=False))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.nginx.url, timeout=HANG_SECONDS)

    def replica_logs(self) -> str:
        return "\n".join(f"--- replica {n}\n{app.log_text()[-4000:]}" for n, app in enumerate(self.apps))

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(libpq_url(self.database_url)) as db:
            return list(db.execute(query, params).fetchall())

    def rows_by_ip(self, model: str) -> Counter[str]:
        rows = self.rows("SELECT ip_address FROM chat_logs WHERE model_id = %s", model)
        return Counter(ip for (ip,) in rows)

    def replica_of(self, upstream: str) -> int:
        return self.ports.index(int(upstream.rsplit(":", 1)[1]))

    def wait_for_model(self, model: str) -> None:
        """Until every replica lists ``model`` (a channel just made through one of them)."""
        for app in self.apps:
            wait_until(
                lambda u=app.base_url: model in httpx.get(f"{u}/api/models", timeout=HANG_SECONDS).text,
                poll=0.1,
                what="every replica lists the new model",
            )


@contextmanager
def deploy(base: Path, *, replicas: int, database_url: str, **env: str) -> Iterator[Deployment]:
    """``replicas`` app replicas on ``database_url`` (PostgreSQL) behind nginx running deploy/nginx.conf,
    the admin logged in through nginx; ``env``: the apps' settings (RATE_LIMIT_STORAGE, …) over a
    production environment. Everything under ``base``; stopped on leaving."""
    binary = nginx_binary()
    assert binary
    work, logs, nginx_dir = base / "work", base / "logs", base / "nginx"
    for folder in (work, logs, nginx_dir):
        folder.mkdir(parents=True)
    environ = production_env(
        base / "unused",  # DATABASE_URL: the data directory is ./data in the working directory
        DATABASE_URL=database_url,
        TRUSTED_PROXIES="127.0.0.1/32",  # nginx's address
        **env,
    )
    with ExitStack() as stack:
        ports = [free_port() for _ in range(replicas)]
        nginx = Nginx(nginx_dir, free_port())
        deployment = Deployment(database_url, nginx, environ, work, logs, ports, stack)
        deployment.apps = [deployment.start_replica(n) for n in range(replicas)]
        for app in deployment.apps:  # started together, as a deployment's replicas are
            wait_until_ready(app)
        nginx.conf.write_text(render_nginx_conf(ports, nginx.port), encoding="utf-8")
        nginx.check()
        stack.callback(nginx.stop)
        nginx.start()
        with deployment.client() as http:
            login = http.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            deployment.admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        yield deployment
