"""App processes forked from one that has already imported the app (multiprocessing's forkserver).

A test that starts ``python -m app`` waits about 3 s of CPU for the imports (NiceGUI, FastAPI, SQLAlchemy,
Alembic…) before the app does anything, and the suite starts about a hundred of them on two cores. Here a
forkserver imports the app once per test worker; each start forks it, and the child then runs exactly what
``python -m <module> <args>`` runs (``runpy``), with the test's environment, working directory and log
file. It is a real, separate process: it listens on its own port, holds its own database connections and
dies by SIGTERM or ``kill -9`` like the exec'd one. :func:`tests.helpers.run_app` uses it unless the start
needs a fresh interpreter (another ``PYTHONPATH``, ``fresh=True`` for the tests of the entry point itself,
or ``PYAICHAT_TEST_FORK=0`` to turn it off).

What differs from an exec'd interpreter, and how the child puts it right:
- the environment: replaced by the test's before the app reads it (the app reads it at start-up, not at
  import), ``time.tzset()`` for ``TZ``; NiceGUI's ``Storage`` reads its three variables at import, so
  they are read again;
- stdout and stderr: the log file, line by line (``PYTHONUNBUFFERED``);
- ``atexit``: multiprocessing ends a child with ``os._exit``, so the child runs the handlers itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# imported by the forkserver before it forks anything: what every start imports (tests.faulty_app is not:
# it patches the app as it is imported, which runpy does again in each child that runs it)
PRELOAD = ["app.cli", "app.main", "app.log_format", "bench.serve", "tests.zygote"]
# modules a forked child may run; anything else is exec'd
FORKABLE = {"app", "tests.faulty_app", "bench.serve"}

_context: Any = None


def enabled(env: dict[str, str], module_args: tuple[str, ...]) -> bool:
    """In tests (``PYTEST_CURRENT_TEST``) unless ``PYAICHAT_TEST_FORK=0``; elsewhere (the benchmarks use
    run_app too) only with ``PYAICHAT_TEST_FORK=1``: a benchmark measures the app as deployed."""
    wanted = os.environ.get("PYAICHAT_TEST_FORK", "1" if "PYTEST_CURRENT_TEST" in os.environ else "0")
    return (
        wanted == "1"
        and module_args[0] in FORKABLE
        and env.get("PYTHONPATH", "") == os.environ.get("PYTHONPATH", "")
    )


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(module_args: tuple[str, ...], env: dict[str, str], cwd: str, log_path: str) -> None:
    import atexit
    import io
    import runpy
    import threading
    import time

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    from nicegui.storage import Storage

    Storage.path = Path(os.environ.get("NICEGUI_STORAGE_PATH", ".nicegui")).resolve()
    Storage.redis_url = os.environ.get("NICEGUI_REDIS_URL", None)
    Storage.redis_key_prefix = os.environ.get("NICEGUI_REDIS_KEY_PREFIX", "nicegui:")
    # as the interpreter starts: SIGINT raises KeyboardInterrupt, SIGTERM's default ends the process
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    multiprocessing.current_process().name = "MainProcess"  # ui.run does nothing in another process
    sys.argv = [module_args[0], *module_args[1:]]
    code: Any = 0
    try:
        runpy.run_module(module_args[0], run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's exit: threads, then atexit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    os._exit(code)


class ForkedProcess:
    """The part of :class:`subprocess.Popen` the tests use, for a child of the forkserver."""

    def __init__(self, module_args: tuple[str, ...], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.args = [sys.executable, "-m", *module_args]
        self._process = _forkserver().Process(
            target=_child, args=(module_args, env, str(cwd), str(log_path)), daemon=False
        )
        self._process.start()
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        code = self._process.exitcode
        return None if code is None else int(code)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start() -> None:
    """Start the forkserver now rather than at the first start of an app: its imports run while the
    caller does other work (a quick benchmark run starts PostgreSQL and the upstream meanwhile)."""
    from multiprocessing import forkserver

    _forkserver()
    forkserver.ensure_running()
