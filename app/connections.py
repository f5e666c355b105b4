"""How many connections the process takes and how long it lets one hold a descriptor, as an operator
sets it (docs/configuration.md#connections).

Every open connection holds a file descriptor: a client's, a chat page's WebSocket, each upstream
request. Container engines commonly start a process with a soft limit of 1,024 open files under a far
higher hard limit, so at start the soft limit is raised to the hard one (Go's runtime does the same).
``MAX_CONNECTIONS`` is uvicorn's ``limit_concurrency`` rule, applied by ``app.http_protocol`` so that
its answer carries the usual headers: past that many open connections (or requests in progress) a new
request is answered 503 at once, which keeps descriptors for the calls under way.
Slow clients are the business of ``app.http_protocol``.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

from app.config import Settings
from app.http_protocol import guarded_protocol

log = logging.getLogger("pyaichat")
FEW_OPEN_FILES = 4096  # under this, a few hundred pages and streams run the process out of descriptors


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files as far as the hard limit allows; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a hard limit above what the kernel allows (macOS)
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
    if soft != resource.RLIM_INFINITY and soft < FEW_OPEN_FILES:
        log.warning(
            "the open-files limit is %d: each connection holds one; raise it (ulimit -n, or ulimits nofile "
            "in docker-compose.yml) to serve more than a few hundred clients at once",
            soft,
        )
    return soft


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for connections: the guarded protocol, and the concurrency cap if one is set."""
    return {
        # request heads: a deadline and a cap; connections: MAX_CONNECTIONS
        "http": guarded_protocol(settings.header_read_timeout, settings.max_connections or None),
    }
