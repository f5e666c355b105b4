"""What a connection per API call between nginx and the replicas costs (docs/performance-postgresql.md):
benchmark 8's setup with ``keepalive 32`` added to deploy/nginx.conf's ``pyaichat_api`` upstream, and
without it, in turn. Opt-in, not part of ``python -m bench``::

    python -m bench.nginx_keepalive [--replicas 2] [--rounds 4] [--seconds 12]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import tests.replicas as replicas
from bench import replicas_bench
from bench.databases import database
from bench.harness import upstream_process

_deployed = replicas.render_nginx_conf
_API_UPSTREAM = re.compile(r"(upstream pyaichat_api \{\n\s*least_conn;\n(?:\s*server [^\n]*\n)+)")


def _with_keepalive(ports: list[int], listen_port: int) -> str:
    text, count = _API_UPSTREAM.subn(r"\1        keepalive 32;\n", _deployed(ports, listen_port))
    assert count == 1, "deploy/nginx.conf's pyaichat_api upstream changed shape"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pyaichat-keepalive-"))
    with upstream_process() as upstream, database("postgresql") as db:
        assert db.server is not None
        for run, keepalive in enumerate([False, True] * options.rounds):
            replicas.render_nginx_conf = _with_keepalive if keepalive else _deployed
            load, _direct, _warm, (once, _detail) = replicas_bench._measure(
                work / f"run-{run}",
                db.server,
                upstream,
                options.replicas,
                concurrency=64,
                seconds=options.seconds,
            )
            print(
                f"{options.replicas} replicas, keepalive {'on ' if keepalive else 'off'}: {load.describe()}; "
                f"failures {dict(load.failures) or 0}; every call logged once: {once}",
                flush=True,
            )
    replicas.render_nginx_conf = _deployed


if __name__ == "__main__":
    main()
