"""The compose files and deploy/nginx.conf agree with each other and with the app, read as files: Docker
cannot run on the machines the tests run on (tests/test_replicas.py runs the same nginx.conf with real
processes). Every variable given to the app is one it reads; the hosts in its URLs are services of the
file; nginx's upstream is the app's port and its fixed address is the one the app trusts; every variable
a file requires is in .env.example; a stop lasts longer than the app's grace."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import Settings
from tests.helpers import ROOT

COMPOSE_FILES = [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy").glob("compose.*.yml"))]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
READ_BY_NICEGUI = {"NICEGUI_REDIS_URL"}  # nicegui/storage.py reads it itself
# what a stop takes at most past the grace: open calls cut (5 s), the call log written out (6 s)
STOP_AFTER_GRACE_SECONDS = 11


def _compose(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict) and "services" in loaded, path
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    entries = service.get("environment", [])
    pairs = (entry.split("=", 1) for entry in entries) if isinstance(entries, list) else entries.items()
    return {name: value for name, value in pairs}


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda path: path.name)
def test_the_app_is_given_only_variables_it_reads_and_hosts_the_file_runs(path: Path) -> None:
    compose = _compose(path)
    services = compose["services"]
    app = services["app"]
    known = {name.upper() for name in Settings.model_fields} | READ_BY_NICEGUI
    environment = _environment(app)
    assert set(environment) <= known, set(environment) - known
    for name in ("DATABASE_URL", "RATE_LIMIT_STORAGE", "NICEGUI_REDIS_URL"):
        if name in environment:
            host = urlsplit(re.sub(r"\$\{[^}]*\}", "x", environment[name])).hostname
            assert host in services, (name, host)
    for dependency in app.get("depends_on", {}):
        assert dependency in services and "healthcheck" in services[dependency], dependency
    grace = Settings.model_fields["shutdown_grace_seconds"].default
    stop = re.fullmatch(r"(\d+)s", str(app["stop_grace_period"]))
    assert stop is not None and int(stop.group(1)) >= grace + STOP_AFTER_GRACE_SECONDS


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda path: path.name)
def test_every_variable_a_compose_file_requires_is_in_the_env_example(path: Path) -> None:
    required = set(re.findall(r"\$\{(\w+):\?", path.read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    offered = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert required and required <= offered, required - offered


def test_nginx_sends_to_the_apps_port_and_the_app_trusts_nginx_alone() -> None:
    compose = _compose(ROOT / "deploy" / "compose.replicas.yml")
    services = compose["services"]
    conf = NGINX_CONF.read_text(encoding="utf-8")
    upstreams = re.findall(r"^\s*server (\w+):(\d+)\b", conf, re.MULTILINE)
    assert upstreams and {host for host, _ in upstreams} == {"app"}
    assert {int(port) for _, port in upstreams} == {Settings.model_fields["app_port"].default}
    listen = re.findall(r"^\s*listen (\d+);", conf, re.MULTILINE)
    nginx = services["nginx"]
    assert [port.rsplit(":", 1)[1] for port in nginx["ports"]] == listen
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    (network,) = nginx["networks"]
    address = ipaddress.ip_address(nginx["networks"][network]["ipv4_address"])
    (subnet,) = (ipaddress.ip_network(c["subnet"]) for c in compose["networks"][network]["ipam"]["config"])
    assert address in subnet
    trusted = [
        ipaddress.ip_network(item) for item in _environment(services["app"])["TRUSTED_PROXIES"].split(",")
    ]
    assert trusted == [ipaddress.ip_network(f"{address}/32")]
