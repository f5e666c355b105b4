"""Benchmark 7, the page's own speed (issue 19): Enter → first answer token on screen against the API's
time to first token for the same upstream, and the first load of ``/`` (bytes, requests, time until the
message box can be used), in headless Chromium.

The timing scripts below are the benchmark's, run in the browser through WebDriver (a ``keydown``
listener, MutationObservers); the app has no JavaScript of its own for them."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import Gateway, median, percentile
from bench.page_bench import _choose_model, _driver, _send
from bench.report import Result

FIRST_TOKEN_MS = 50  # the upstream waits this long before every chunk, the first one too
ANSWER_CHUNKS = 2  # "w0 w1": short answers, so 100 messages take seconds
NEW_CHAT_EVERY = 10  # messages per conversation: the history sent upstream and the page's DOM stay small

# Enter in the message box → the first answer text in the DOM (and the frame after it). Installed once per
# page; ``window.__bench.arm()`` before each message records how many answers there were.
ENTER_TO_ANSWER_PROBE = """
if (!window.__bench) {
  const bench = window.__bench = {enter: null, bubble: null, token: null, frame: null, answers: 0};
  bench.arm = () => {
    bench.enter = bench.bubble = bench.token = bench.frame = null;
    bench.answers = document.querySelectorAll('.bubble.assistant').length;
  };
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && bench.enter === null) bench.enter = performance.now();
  }, true);
  new MutationObserver(() => {
    if (bench.enter === null || bench.token !== null) return;
    const bubbles = document.querySelectorAll('.bubble.assistant');
    if (bubbles.length <= bench.answers) return;
    if (bench.bubble === null) bench.bubble = performance.now();
    const answer = bubbles[bubbles.length - 1].querySelector('.answer');
    if (!answer || !answer.textContent.includes('w0') || !answer.checkVisibility()) return;
    bench.token = performance.now();
    requestAnimationFrame(() => { bench.frame = performance.now(); });
  }).observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});
}
window.__bench.arm();
"""

# Evaluated before the page's own scripts on every navigation (CDP Page.addScriptToEvaluateOnNewDocument):
# the moment the message box is shown and enabled with the model picker shown, and the moment that is true
# and NiceGUI's socket has done its handshake (before that an Enter reaches no one). Times are
# performance.now(), milliseconds from the navigation's start.
USABLE_PROBE = """
window.__load = {shown: null, usable: null};
const __check = () => {
  const load = window.__load;
  const box = document.querySelector('.composer textarea');
  const picker = document.querySelector('.model-select');
  const shown = box && !box.disabled && picker && picker.checkVisibility() && box.checkVisibility();
  if (shown && load.shown === null) load.shown = performance.now();
  if (shown && window.did_handshake && load.usable === null) load.usable = performance.now();
  return load.usable !== null;
};
const __poll = () => { if (!__check()) requestAnimationFrame(__poll); };
document.addEventListener('DOMContentLoaded', () => {
  const observer = new MutationObserver(() => { if (__check()) observer.disconnect(); });
  observer.observe(document.documentElement, {childList: true, subtree: true, attributes: true});
  __poll();
});
"""

# What the load fetched, from the Resource Timing API (transferSize: headers + encoded body, 0 when served
# from the cache). Socket.IO's requests (the handshake's long polls; the WebSocket itself has no entry) are
# the live connection, not the page: counted apart.
LOAD_ENTRIES = """
const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
return entries.map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize, e.initiatorType]);
"""

TAILWIND_RUNS = """
const generated = [...document.querySelectorAll('style')].filter(
  s => s.type !== 'text/tailwindcss' && s.textContent.includes('tailwindcss'));
return [generated.length, generated.reduce((n, s) => n + s.textContent.length, 0)];
"""


@dataclass
class _Load:
    transferred: int = 0  # bytes of the page's own requests
    requests: int = 0
    socket_bytes: int = 0
    socket_requests: int = 0
    tailwind_bytes: int = 0  # the Tailwind browser build's share of ``transferred`` (a compiler in the page)
    tailwind_css_bytes: int = 0  # the app's Tailwind CSS compiled ahead of time (pages/tailwind.css)
    decoded: int = 0
    shown_ms: float = float("nan")
    usable_ms: float = float("nan")
    tailwind_css_chars: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)


def _measure_load(driver: Any, url: str) -> _Load:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    WebDriverWait(driver, 30, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.__load && window.__load.usable !== null")
    )
    time.sleep(0.3)  # requests still in flight (fonts, the socket's upgrade) get their entries
    load = _Load()
    for name, transfer, _encoded, decoded, _kind in driver.execute_script(LOAD_ENTRIES):
        if "/socket.io/" in name:
            load.socket_bytes += transfer
            load.socket_requests += 1
            continue
        load.transferred += transfer
        load.decoded += decoded
        load.requests += 1
        load.largest.append((transfer, name.removeprefix(url)))
        if "tailwindcss" in name:
            load.tailwind_bytes += transfer
        elif "/static/tailwind-" in name:
            load.tailwind_css_bytes += transfer
    load.largest.sort(reverse=True)
    times = driver.execute_script("return window.__load")
    load.shown_ms, load.usable_ms = float(times["shown"]), float(times["usable"])
    load.tailwind_css_chars = int(driver.execute_script(TAILWIND_RUNS)[1])
    return load


def _api_ttft(client: httpx.Client, url: str, model: str) -> float:
    """Seconds from the request to the first content event of a streamed answer through the API."""
    import json

    started = time.perf_counter()
    with client.stream(
        "POST", url, json={"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:]).get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    return time.perf_counter() - started
    raise AssertionError("the API's stream ended without content")


def _page_ttft(driver: Any, text: str) -> tuple[float, float, float]:
    """Milliseconds from Enter to the first answer text in the DOM, to the frame after it, and to the
    answer's (still empty) bubble: the server's round trip for the new turn, before any upstream byte."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script(ENTER_TO_ANSWER_PROBE)
    _send(driver, text)
    WebDriverWait(driver, 30, poll_frequency=0.02).until(
        lambda d: d.execute_script("return window.__bench.frame !== null")
    )
    times = driver.execute_script("return window.__bench")
    # the answer ends (the send button is back) before the next message goes
    WebDriverWait(driver, 30, poll_frequency=0.02).until(
        lambda d: d.find_elements(By.XPATH, "//button[.//i[text()='arrow_upward']]")
    )
    enter = times["enter"]
    return times["token"] - enter, times["frame"] - enter, times["bubble"] - enter


def bench_page_speed(
    gw: Gateway, upstream: str, *, messages: int, cold_loads: int, new_chat_every: int = NEW_CHAT_EVERY
) -> Result:
    result = Result(
        f"7. Chat page speed: Enter → first token over {messages} messages, first load of / "
        f"({cold_loads} cold)"
    )
    model = f"bench-first-{FIRST_TOKEN_MS}"
    gw.add_channel(model, f"{upstream}/slow-{FIRST_TOKEN_MS}-{ANSWER_CHUNKS}/v1")
    cold: list[_Load] = []
    warm: _Load | None = None
    page_ms: list[float] = []
    frame_ms: list[float] = []
    bubble_ms: list[float] = []
    api_ms: list[float] = []
    for index in range(cold_loads):
        profile = tempfile.mkdtemp(prefix="bench-chromium-")
        driver = _driver(profile)
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": USABLE_PROBE})
            cold.append(_measure_load(driver, gw.url))
            if index < cold_loads - 1:
                continue
            warm = _measure_load(driver, gw.url)  # the same profile again: its HTTP cache is filled
            _choose_model(driver, model)  # in the page of the warm load
            with httpx.Client(timeout=60) as client:
                api_url = f"{gw.url}/api/chat/completions"
                _api_ttft(client, api_url, model)  # the connection is open before the first sample
                for number in range(messages):
                    if number and number % new_chat_every == 0:
                        _new_chat(driver)
                    page, frame, bubble = _page_ttft(driver, f"message {number}")
                    page_ms.append(page)
                    frame_ms.append(frame)
                    bubble_ms.append(bubble)
                    api_ms.append(1000 * _api_ttft(client, api_url, model))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    assert warm is not None
    added = [page - api for page, api in zip(page_ms, api_ms, strict=True)]
    added_frame = [frame - api for frame, api in zip(frame_ms, api_ms, strict=True)]
    result.add("page: Enter → first token in the DOM, p50 / p99", _pair(page_ms), unit="ms")
    result.add("  of it Enter → the answer's empty bubble, p50 / p99", _pair(bubble_ms), unit="ms")
    result.add("API: time to first token, p50 / p99", _pair(api_ms), unit="ms")
    p50, p99 = percentile(added, 50), percentile(added, 99)
    result.add("page − API, p50", f"{p50:.1f}", "≤ 50 ms", p50 <= 50, unit="ms")
    result.add("page − API, p99", f"{p99:.1f}", "≤ 150 ms", p99 <= 150, unit="ms")
    result.add("page − API to the next frame, p50 / p99", _pair(added_frame), unit="ms")

    kb = [load.transferred / 1000 for load in cold]
    usable = [load.usable_ms for load in cold]
    worst = max(range(len(cold)), key=lambda i: cold[i].transferred)
    result.add(
        "first load of /: transferred (cold cache), largest",
        f"{max(kb):.1f}",
        "≤ 300 KB",
        max(kb) <= 300,
        "KB",
    )
    result.add("first load of /: requests", str(cold[worst].requests))
    result.add(
        "  of it Tailwind: the browser build / CSS compiled ahead of time",
        f"{cold[worst].tailwind_bytes / 1000:.1f} / {cold[worst].tailwind_css_bytes / 1000:.1f}",
        unit=f"KB (CSS generated in the page: {cold[worst].tailwind_css_chars:,} characters)",
    )
    result.add("  decoded (uncompressed) size", f"{cold[worst].decoded / 1000:.1f}", unit="KB")
    result.add(
        "  Socket.IO (not counted above)",
        f"{cold[worst].socket_bytes / 1000:.1f} KB in {cold[worst].socket_requests} requests",
    )
    result.add(
        "message box and model picker shown, median",
        f"{median([load.shown_ms for load in cold]):.0f}",
        unit="ms",
    )
    result.add(
        "input usable (… and the socket's handshake done), median / max",
        f"{median(usable):.0f} / {max(usable):.0f} ms",
        "≤ 1,000 ms",
        max(usable) <= 1000,
    )
    result.add(
        "second load (warm cache): transferred, requests, usable",
        f"{warm.transferred / 1000:.1f} KB, {warm.requests}, {warm.usable_ms:.0f} ms",
    )
    top = ", ".join(
        f"{path.split('/')[-1] or '/'} {size / 1000:.0f}" for size, path in cold[worst].largest[:8]
    )
    result.notes.append(
        f"Enter → first token: the upstream (`slow-{FIRST_TOKEN_MS}-{ANSWER_CHUNKS}`) waits "
        f"{FIRST_TOKEN_MS} ms before each of its {ANSWER_CHUNKS} chunks; each page message (a guest in one "
        f"tab, a new chat every {new_chat_every} messages) is followed by the same request streamed through "
        "the API (httpx, one kept-alive connection); the difference is taken pair by pair. Page times are "
        "the browser's `performance.now()`: a `keydown` listener (capture phase) for Enter, a "
        "MutationObserver for the first answer text visible in the newest assistant bubble, and "
        "the `requestAnimationFrame` after it; both scripts are the benchmark's, run through WebDriver"
    )
    result.notes.append(
        "first load: a new Chromium profile per cold load (empty HTTP cache), the same profile again for the "
        "warm one; bytes are the Resource Timing API's `transferSize` (headers + encoded body) of the "
        "navigation and every resource, without Socket.IO's requests (the live connection: its handshake "
        "polls; the WebSocket has no entry); 'usable' is `performance.now()` (from the navigation's start) "
        "when a script added before the page's own (CDP `Page.addScriptToEvaluateOnNewDocument`) sees the "
        "message box enabled, the model picker visible and NiceGUI's socket handshake done. Largest "
        f"transfers (KB): {top}"
    )
    return result


def _new_chat(driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.XPATH, "//button[.//i[text()='add_comment']]").click()
    WebDriverWait(driver, 30, poll_frequency=0.02).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, ".bubble.assistant")
    )


def _pair(values: list[float]) -> str:
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"
