"""The browser-session folder at start (app.main.prepare_session_storage): 0700, files 0600, including
the files an older version left world-readable and the ones NiceGUI writes afterwards. Run in a child
process, because the umask it sets is the whole process's."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

CHILD = """
import sys
from pathlib import Path
from nicegui.persistence import FilePersistentDict
from app.main import prepare_session_storage

folder = Path(sys.argv[1])
prepare_session_storage(folder)
written = FilePersistentDict(folder / "storage-user-new.json", encoding="utf-8")
written["dark"] = True  # no event loop: NiceGUI writes the file at once (a temporary file, then a rename)
"""


def test_the_session_folder_and_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / ".nicegui"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    old = folder / "storage-user-old.json"
    old.write_text(json.dumps({"dark": False}), encoding="utf-8")
    old.chmod(0o644)
    subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (old, folder / "storage-user-new.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert json.loads((folder / "storage-user-new.json").read_text(encoding="utf-8")) == {"dark": True}
