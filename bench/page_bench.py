"""Benchmark 7: streaming into the chat page (NiceGUI over a WebSocket, in headless Chromium) against
the same answer through the API, and the API's latency while several pages stream."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.gateway_bench import interleaved_latencies, stream_once
from bench.harness import Gateway, cpu_seconds, median, percentile, stat_cpu_seconds
from bench.report import Result
from tests.browser.conftest import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM

PARAGRAPH_WORDS = 60  # answers come in paragraphs, as real ones do


def _driver(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1100,800"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _open_page(driver, url: str, model_name: str) -> None:
    driver.get(url + "/")
    _choose_model(driver, model_name)


def _choose_model(driver, model_name: str) -> None:
    """Pick ``model_name`` in the open chat page's model picker (each step as soon as the page is ready
    for it: WebDriverWait's default poll of 0.5 s added up to a second per pick)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20, poll_frequency=0.05).until(
        EC.element_to_be_clickable((By.CSS_SELECTOR, "textarea"))
    )
    driver.find_element(By.CSS_SELECTOR, ".model-select").click()
    WebDriverWait(driver, 20, poll_frequency=0.05).until(
        EC.element_to_be_clickable(
            (By.XPATH, f"//div[contains(@class,'q-item')]//span[text()='{model_name}']")
        )
    ).click()
    WebDriverWait(driver, 20, poll_frequency=0.05).until(
        EC.invisibility_of_element_located((By.CSS_SELECTOR, ".q-menu"))
    )


def _send(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, "textarea")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def _wait_answer_done(driver, last_word: str, timeout: float) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: (
            last_word
            in " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".bubble.assistant .answer"))
            and d.find_elements(By.XPATH, "//button[.//i[text()='arrow_upward']]")
        )
    )


def _streaming(driver) -> bool:
    """The page still shows its stop button: the answer has not ended."""
    from selenium.webdriver.common.by import By

    return bool(driver.find_elements(By.XPATH, "//button[.//i[text()='stop']]"))


def bench_page(
    gw: Gateway,
    upstream: str,
    *,
    tokens: int,
    pace_ms: int,
    pages: int,
    rounds: int,
    per_round: int,
    settle_seconds: float,
    warmups: int = 5,
) -> Result:
    result = Result(f"7. Chat page streaming: one {tokens:,}-token answer, paced {pace_ms} ms")
    model = f"bench-long-{tokens}"
    gw.add_channel(model, f"{upstream}/slow-{pace_ms}-{tokens}-{PARAGRAPH_WORDS}/v1")
    last_word = f"w{tokens - 1}"
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    driver = _driver(profile)
    try:
        _open_page(driver, gw.url, model)
        before = cpu_seconds(gw.pid)
        _send(driver, "long answer")
        _wait_answer_done(driver, last_word, timeout=tokens * pace_ms / 1000 + 60)
        page_cpu = cpu_seconds(gw.pid) - before
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    async def through_api() -> None:
        async with httpx.AsyncClient(timeout=600) as client:
            trace = await stream_once(
                client,
                f"{gw.url}/api/chat/completions",
                {"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]},
            )
            assert len(trace.events) == tokens, len(trace.events)

    before = cpu_seconds(gw.pid)
    asyncio.run(through_api())
    api_cpu = cpu_seconds(gw.pid) - before
    ratio = page_cpu / api_cpu if api_cpu else float("inf")
    result.add("server CPU: page / API", f"{page_cpu:.2f} / {api_cpu:.2f}", unit="s")
    result.add("page ÷ API server CPU", ratio, "≤ 3", ratio <= 3)

    # Benchmark 1's ratio while `pages` chat pages stream at the same time: answers long enough to
    # outlast the measurement (checked at its end), at the same pace, the browsers on the same cores.
    measured_seconds = settle_seconds + 2 * rounds * per_round * 0.055 + 5
    busy_tokens = max(tokens, int(2 * measured_seconds * 1000 / pace_ms))
    busy_model = f"bench-long-{busy_tokens}"
    gw.add_channel(busy_model, f"{upstream}/slow-{pace_ms}-{busy_tokens}-{PARAGRAPH_WORDS}/v1")
    busy = _while_pages_stream(gw, upstream, busy_model, pages, rounds, per_round, settle_seconds, warmups)
    result.add(
        "pages still streaming when the measurement ended",
        f"{busy.still_streaming} / {pages}",
        f"{pages} / {pages}",
        busy.still_streaming == pages,
    )
    result.add(f"gateway CPU while the {pages} pages stream", 100 * busy.server_share, unit="% of a core")
    result.add(f"Chromium CPU for the {pages} pages", 100 * busy.browser_share, unit="% of a core")
    result.add(f"benchmark 1 ratio while {pages} pages stream", busy.ratio, "≤ 1.10", busy.ratio <= 1.10)
    result.notes.append(
        f"answers in paragraphs of {PARAGRAPH_WORDS} words; the single answer paced {pace_ms} ms; the "
        f"{pages} concurrent answers have {busy_tokens:,} tokens at the same pace so that they outlast "
        f"the measurement, which starts {settle_seconds:g} s after the last page sent its message (in trials "
        f"with less, the first round, while {pages} browsers were still starting to draw, ran 1.13–1.22 "
        f"where the later rounds settled near 1.07) and has the {rounds} rounds of benchmark 1"
    )
    result.notes.append(
        "CPU from /proc/<pid>/stat (the gateway's process; every Chromium process); the browsers run on "
        "the same 2 cores as the gateway, the upstream and the client"
    )
    return result


@dataclass
class _Busy:
    ratio: float
    still_streaming: int
    server_share: float  # the gateway's CPU seconds per second during the measurement
    browser_share: float  # and every Chromium process's together


def _chromium_cpu_seconds() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if "chrom" in stat[stat.index("(") + 1 : stat.rindex(")")]:
            total += stat_cpu_seconds(stat)
    return total


def _while_pages_stream(
    gw: Gateway,
    upstream: str,
    model: str,
    pages: int,
    rounds: int,
    per_round: int,
    settle_seconds: float,
    warmups: int,
) -> _Busy:
    drivers = []
    profiles = [tempfile.mkdtemp(prefix="bench-chromium-") for _ in range(pages)]
    delay_body = {"model": "bench-delay", "messages": [{"role": "user", "content": "x"}]}
    try:
        for profile_dir in profiles:
            page = _driver(profile_dir)
            drivers.append(page)
            _open_page(page, gw.url, model)
        for page in drivers:
            _send(page, "stream while the API is measured")
        time.sleep(settle_seconds)
        cpu_before, browsers_before = cpu_seconds(gw.pid), _chromium_cpu_seconds()
        started = time.perf_counter()
        data = asyncio.run(
            interleaved_latencies(
                {
                    "direct": (f"{upstream}/delay-50/v1/chat/completions", delay_body),
                    "gateway": (f"{gw.url}/api/chat/completions", delay_body),
                },
                rounds,
                per_round,
                warmups,
            )
        )
        elapsed = time.perf_counter() - started
        share = (cpu_seconds(gw.pid) - cpu_before) / elapsed
        browser_share = (_chromium_cpu_seconds() - browsers_before) / elapsed
        still_streaming = sum(1 for page in drivers if _streaming(page))
    finally:
        for page in drivers:
            page.quit()
        for profile_dir in profiles:
            shutil.rmtree(profile_dir, ignore_errors=True)
    p50_ratios = [
        percentile(g, 50) / percentile(d, 50) for d, g in zip(data["direct"], data["gateway"], strict=True)
    ]
    return _Busy(median(p50_ratios), still_streaming, share, browser_share)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
