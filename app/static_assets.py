"""NiceGUI's scripts and styles sent compressed with Brotli at its highest quality.

NiceGUI serves its static files (Quasar, Vue, Socket.IO, …) through the GZip middleware, which compresses
them again on every request. Brotli at quality 11 takes them ~15 % below gzip -9 (Quasar's script: 155 KB
→ 129 KB), but costs seconds of CPU, so the files are compressed once, ahead of time, by ServeStatic's
compressor, into a cache directory shared by every process of the same NiceGUI install, and served from
there by ServeStatic (which picks the variant the browser accepts: Brotli, else gzip, else the file).

The same goes for the ES modules the pages import (:data:`PAGE_MODULES`): the dashboard's Plotly, 4.6 MB,
which NiceGUI would send through gzip in 64 KB pieces on every first visit (540 ms of the dashboard's
first load on a busy 2-core machine; with Brotli 0.96 MB, sent as one file in 200 ms).

The cache is ``$XDG_CACHE_HOME/pyaichat`` (``~/.cache/pyaichat``). The image compresses the files while it
is built (``python -m app.static_assets``); elsewhere the first start compresses them in a background
thread (a few seconds of CPU, once per install), and until that is done NiceGUI serves them as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import nicegui
import nicegui.elements.plotly  # registers the module, so that its URL is known
from nicegui import dependencies
from servestatic import ServeStaticASGI
from servestatic.compress import Compressor
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("pyaichat.static")

NICEGUI_STATIC = Path(nicegui.__file__).with_name("static")
URL_PREFIX = f"/_nicegui/{nicegui.__version__}/static/"
SUFFIXES = (".js", ".mjs", ".css")
LARGEST = 600 * 1024  # larger files are development builds (Quasar's and Vue's) and the retired SCSS compiler
PAGE_MODULES = ("nicegui-plotly",)  # NiceGUI's ES modules that the pages import (the dashboard's charts)


def default_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyaichat"


def esm_module(name: str) -> tuple[str, Path]:
    """The URL prefix and the directory of one of NiceGUI's ES modules (``nicegui-plotly``)."""
    for key, module in dependencies.esm_modules.items():
        if module.name == name:
            return f"/_nicegui/{nicegui.__version__}/esm/{key}/", module.path
    raise LookupError(f"NiceGUI has no ES module {name!r}")


def module_url(name: str) -> str:
    """Where the browser loads an ES module's entry point from."""
    return esm_module(name)[0] + "index.js"


def worth_compressing(source: Path = NICEGUI_STATIC, largest: float = LARGEST) -> list[Path]:
    """The files NiceGUI's pages may load: scripts and styles, without the development builds, for which
    a ``.prod`` twin exists (``quasar.umd.js`` → ``quasar.umd.prod.js``)."""
    files = []
    for path in sorted(source.rglob("*")):
        if path.suffix not in SUFFIXES or not path.is_file() or path.stat().st_size > largest:
            continue
        if path.with_name(f"{path.stem}.prod{path.suffix}").exists():
            continue
        files.append(path)
    return files


def _fingerprint(files: list[Path], source: Path) -> str:
    """Names and contents of the files: another NiceGUI install gets a directory of its own."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(source)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a lock between processes; none where ``fcntl`` is missing)."""
    with path.open("a") as lock_file:
        if fcntl is not None:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield  # the lock ends with the file's closing


class CompressedAssets:
    """The compressed copies of a directory of NiceGUI's files (its static files by default, or an ES
    module's), in ``<cache>/nicegui-<version>-<digest>``, served under ``prefix``."""

    def __init__(
        self,
        cache_root: Path | None = None,
        source: Path = NICEGUI_STATIC,
        *,
        prefix: str = URL_PREFIX,
        largest: float = LARGEST,
    ) -> None:
        self.source = source
        self.prefix = prefix
        self.files = worth_compressing(source, largest)
        name = f"nicegui-{nicegui.__version__}-{_fingerprint(self.files, source)}"
        self.directory = (cache_root or default_cache_root()) / name
        self.server: ServeStaticASGI | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.directory.is_dir()  # made whole elsewhere, then renamed into place

    def build(self) -> bool:
        """Compress the files once: one process does, others of the same install wait for it and use its
        copy. False when the cache directory cannot be written (then NiceGUI keeps serving the files)."""
        with self._lock:
            if self.ready:
                return True
            try:
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                with _exclusive(self.directory.parent / ".lock"):
                    if not self.ready:  # nor made by the process this one waited for
                        self._compress()
            except OSError as exc:
                log.warning("NiceGUI's static files are not compressed ahead of time: %s", exc)
                return False
            return True

    def _compress(self) -> None:
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=self.directory.parent))
        try:
            compressor = Compressor(use_zstd=False, quiet=True)
            for path in self.files:
                copy = building / path.relative_to(self.source)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
                compressor.compress(copy)
            for made in [building, *building.rglob("*")]:  # public files, readable by every user (the image
                made.chmod(0o755 if made.is_dir() else 0o644)  # compresses them as root)
            building.rename(self.directory)  # whole or not at all
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def serve(self) -> None:
        """Let the server (once it exists) serve the compressed copies."""
        if self.server is not None and self.ready:
            self.server.add_files(str(self.directory), prefix=self.prefix)


def page_assets(cache_root: Path | None = None) -> list[CompressedAssets]:
    """NiceGUI's static files and the ES modules the pages import."""
    assets = [CompressedAssets(cache_root)]
    for name in PAGE_MODULES:
        prefix, source = esm_module(name)
        assets.append(CompressedAssets(cache_root, source, prefix=prefix, largest=float("inf")))
    return assets


class CompressedStatic:
    """ASGI middleware: NiceGUI's files from the compressed copies once they exist, everything else (and
    those files until then) from the app."""

    def __init__(self, app: ASGIApp, assets: list[CompressedAssets]) -> None:
        self.app = app
        # no Cache-Control of its own: NiceGUI's middleware sets its directive on every answer under
        # /_nicegui/<version>/ (a year, immutable), these included
        self.server = ServeStaticASGI(app, max_age=None, allow_all_origins=False)
        self.prefixes = tuple(each.prefix for each in assets)
        for each in assets:
            each.server = self.server
            each.serve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.server(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(web_app: Starlette, assets: list[CompressedAssets]) -> None:
    """Serve NiceGUI's files compressed; compress them first (one after the other, in the background)
    when this install has not yet."""
    web_app.add_middleware(CompressedStatic, assets=assets)
    missing = [each for each in assets if not each.ready]
    if missing:

        def run() -> None:
            for each in missing:
                if each.build():
                    each.serve()

        threading.Thread(target=run, name="compress-static", daemon=True).start()


def main() -> None:
    """Compress ahead of time (the image does while it is built)."""
    logging.basicConfig(level=logging.INFO)
    for assets in page_assets():
        if not assets.build():
            raise SystemExit(1)
        print(f"{len(assets.files)} files of NiceGUI {nicegui.__version__} compressed in {assets.directory}")


if __name__ == "__main__":
    main()
