#!/usr/bin/env python3
"""The two quick-start commands, needing nothing but Python 3.11+.

    python3 dev.py start   # create .venv if needed, install pyaichat, run it on http://127.0.0.1:8000
    python3 dev.py test    # the same environment plus the test extra, then the whole test suite

Extra arguments go to the command (``python3 dev.py test -k auth``). The environment is rebuilt when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PYAICHAT_VENV", ROOT / ".venv"))
STAMP = VENV / ".pyaichat-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment(extra: str) -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"pyaichat needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    python = venv_python()
    if not python.exists():
        print(f"Creating the virtual environment in {VENV} …", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:
            sys.exit(f"could not create {VENV}: {exc} (on Debian/Ubuntu: apt-get install python3-venv)")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extra.encode()).hexdigest()
    if not STAMP.exists() or wanted not in STAMP.read_text().split():
        print(f"Installing pyaichat{f'[{extra}]' if extra else ''} and its dependencies …", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
        target = f".[{extra}]" if extra else "."
        subprocess.run([*pip, "install", "-e", target], check=True, cwd=ROOT)
        # NiceGUI's scripts and styles, Brotli-compressed once per install (else the first start does it)
        subprocess.run([str(python), "-m", "app.static_assets"], check=False, cwd=ROOT)
        previous = STAMP.read_text().split() if STAMP.exists() else []
        STAMP.write_text("\n".join([*previous, wanted]) + "\n")
    return python


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "start":
        python = ensure_environment("")
        return subprocess.call([str(python), "-m", "app", *rest], cwd=ROOT)
    if command == "test":
        python = ensure_environment("test")
        return subprocess.call([str(python), "-m", "pytest", *rest], cwd=ROOT)
    print(__doc__)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"command failed with exit code {exc.returncode}: {' '.join(map(str, exc.cmd))}")
