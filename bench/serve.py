"""The gateway as the benchmarks run it: the real app, optionally with rate limits or call logging
replaced by no-ops so that their cost can be measured as a ratio (``--no-limits``, ``--no-logging``)."""

from __future__ import annotations

import argparse

from app.config import load_settings
from app.main import build_state, configure_app, run_server
from services.logs import CallRecord


class _AdmitAll:
    async def try_hit(self, key: str, per_minute: int, *, minutes: int = 1) -> bool:
        return True

    async def hit_or_raise(self, key: str, per_minute: int) -> None:
        return None

    async def retry_after(self, key: str, per_minute: int, *, minutes: int = 1) -> int:
        return 1


class _DropLogs:
    def record(self, call: CallRecord) -> None:
        return None


def _profile(path: str) -> None:
    """yappi with the CPU clock (each thread's own CPU time, so waiting for I/O, the GIL or a core
    counts for nothing). SIGUSR1 clears what was collected so far (start-up, warm-up), SIGUSR2 stops
    and saves it as pstats (``bench.profile_call --yappi``)."""
    import os
    import signal

    import yappi  # type: ignore[import-not-found]

    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)

    def save(*_: object) -> None:
        yappi.stop()
        yappi.get_func_stats().save(path + ".part", type="pstat")
        os.replace(path + ".part", path)
        main = [t.id for t in yappi.get_thread_stats() if t.name == "_MainThread"]
        if main:  # the event loop's thread alone: what the requests cost, without the background threads
            yappi.get_func_stats(filter={"ctx_id": main[0]}).save(path + ".main", type="pstat")

    signal.signal(signal.SIGUSR1, lambda *_: yappi.clear_stats())  # the measurement begins
    signal.signal(signal.SIGUSR2, save)  # it ends


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-limits", action="store_true")
    parser.add_argument("--no-logging", action="store_true")
    parser.add_argument(
        "--profile",
        help="profile every thread's CPU time with yappi (not a dependency) into this pstats file",
    )
    args = parser.parse_args()
    if args.profile:
        _profile(args.profile)
    settings, _ = load_settings()
    state = build_state(settings)
    if args.no_limits:
        state.chat.limiter = _AdmitAll()  # type: ignore[assignment]
    if args.no_logging:
        state.chat.log_writer = _DropLogs()  # type: ignore[assignment]
    configure_app(state)
    run_server(state, uvicorn_logging_level="warning")


if __name__ in {"__main__", "__mp_main__"}:
    main()
