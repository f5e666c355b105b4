"""Helpers shared by the gateway tests: channels on the loopback upstream, SSE reading, log rows."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import wait_until

UPSTREAM_KEY_PREFIX = "sk-upstream-secret-"


def unique_model(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def add_channel(
    client: httpx.Client,
    headers: dict[str, str],
    *,
    base_url: str,
    model: str,
    name: str | None = None,
    api_key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "name": name or f"channel for {model}",
        "base_url": base_url,
        "api_key": api_key or UPSTREAM_KEY_PREFIX + uuid.uuid4().hex,
        "model_id": model,
        **extra,
    }
    response = client.post("/api/admin/channels", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "plain_key": body["api_key"]}


def chat_body(model: str, *, stream: bool, content: str = "Say hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream, **extra}


def read_sse(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of an SSE response, JSON-decoded (``"[DONE]"`` kept as a string)."""
    events: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def joined(events: list[Any], field: str) -> str:
    return "".join(
        (event["choices"][0]["delta"].get(field) or "")
        for event in events
        if isinstance(event, dict) and event.get("choices")
    )


def log_rows(db_path: Path, model: str, *, expect: int = 1) -> list[dict[str, Any]]:
    """The chat_logs rows of ``model`` once there are ``expect`` of them (the writer thread commits in
    batches); a writer that never gets there fails the wait as hung."""
    rows: list[dict[str, Any]] = []

    def enough() -> bool:
        nonlocal rows
        with sqlite3.connect(db_path) as db:
            db.row_factory = sqlite3.Row
            query = "SELECT * FROM chat_logs WHERE model_id = ? ORDER BY id"
            rows = [dict(row) for row in db.execute(query, (model,))]
        return len(rows) >= expect

    wait_until(enough, poll=0.05, what=f"{expect} log rows of {model}")
    return rows


_ip_counter = itertools.count(1)


def fresh_ip() -> str:
    """A client address no other test uses (from the benchmarking range 198.18.0.0/15)."""
    n = next(_ip_counter) + os.getpid() % 50 * 5000
    return f"198.{18 + n // 65000}.{n // 250 % 256}.{n % 250 + 1}"
