"""NiceGUI's scripts and styles compressed once with Brotli (app/static_assets.py) and served by the app."""

from __future__ import annotations

import gzip
import logging
import threading
from pathlib import Path

import brotli
import httpx
import pytest

from app import static_assets
from app.static_assets import URL_PREFIX, CompressedAssets
from tests.helpers import RunningApp, wait_until

NICEGUI_STATIC = static_assets.NICEGUI_STATIC
QUASAR = "quasar.umd.prod.js"


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "static"
    (source / "lang").mkdir(parents=True)
    (source / "app.js").write_text("console.log('pyaichat');\n" * 400)
    (source / "app.prod.js").write_text("console.log(1);\n" * 400)
    (source / "lang" / "zh-CN.prod.js").write_text("export default {lang: 'zh-CN'};\n" * 100)
    (source / "style.css").write_text("body { color: red; }\n" * 300)
    (source / "font.woff2").write_bytes(b"\0" * 1000)
    return source


def test_the_files_worth_compressing_are_the_pages_scripts_and_styles_not_the_development_builds() -> None:
    names = {path.relative_to(NICEGUI_STATIC).as_posix() for path in static_assets.worth_compressing()}
    loaded_by_the_pages = {
        QUASAR,
        "vue.esm-browser.prod.js",
        "quasar.unimportant.prod.css",
        "quasar.important.prod.css",
        "socket.io.min.js",
        "dompurify.mjs",
        "nicegui.js",
        "nicegui.css",
        "fonts.css",
        "lang/zh-CN.umd.prod.js",
        "lang/en-US.umd.prod.js",
    }
    assert loaded_by_the_pages <= names
    assert not names & {"quasar.umd.js", "vue.esm-browser.js", "sass.dart.js"}


def test_build_writes_brotli_and_gzip_copies_that_decode_to_the_files(tmp_path: Path) -> None:
    source = _source(tmp_path)
    assets = CompressedAssets(tmp_path / "cache", source)
    assert not assets.ready
    assert assets.build()
    assert assets.ready
    built = {path.relative_to(assets.directory).as_posix() for path in assets.directory.rglob("*")}
    # the development build (app.js has a .prod twin) and the font are left to NiceGUI
    assert built == {
        "app.prod.js", "app.prod.js.br", "app.prod.js.gz",
        "lang", "lang/zh-CN.prod.js", "lang/zh-CN.prod.js.br", "lang/zh-CN.prod.js.gz",
        "style.css", "style.css.br", "style.css.gz",
    }  # fmt: skip
    for name in ("app.prod.js", "lang/zh-CN.prod.js", "style.css"):
        original = (source / name).read_bytes()
        assert brotli.decompress((assets.directory / f"{name}.br").read_bytes()) == original
        assert gzip.decompress((assets.directory / f"{name}.gz").read_bytes()) == original
        assert (assets.directory / f"{name}.br").stat().st_mode & 0o777 == 0o644  # readable by every user
    assert not list((tmp_path / "cache").glob(".building-*"))


def test_a_changed_install_gets_a_directory_of_its_own(tmp_path: Path) -> None:
    source = _source(tmp_path)
    first = CompressedAssets(tmp_path / "cache", source)
    assert first.build()
    (source / "style.css").write_text("body { color: blue; }\n" * 300)
    second = CompressedAssets(tmp_path / "cache", source)
    assert second.directory != first.directory
    assert not second.ready  # the old copies are never served for the new files
    assert second.build()
    rebuilt = brotli.decompress((second.directory / "style.css.br").read_bytes())
    assert rebuilt.startswith(b"body { color: blue")


def test_processes_of_one_install_compress_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(tmp_path)
    compressed: list[str] = []
    compress = static_assets.Compressor.compress

    def counting(self: static_assets.Compressor, path: str) -> list[str]:
        compressed.append(Path(path).name)
        return compress(self, path)

    monkeypatch.setattr(static_assets.Compressor, "compress", counting)
    # each builder has a lock file of its own open: the same lock as between two processes
    builders = [CompressedAssets(tmp_path / "cache", source) for _ in range(4)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda b=b: results.append(b.build())) for b in builders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4
    assert sorted(compressed) == ["app.prod.js", "style.css", "zh-CN.prod.js"]


def test_a_cache_that_cannot_be_written_leaves_the_files_to_nicegui(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    assets = CompressedAssets(blocked / "cache", _source(tmp_path))
    with caplog.at_level(logging.WARNING, logger="pyaichat.static"):
        assert not assets.build()
    assert not assets.ready
    assert "not compressed ahead of time" in caplog.text


def _get(app: RunningApp, path: str, encoding: str) -> httpx.Response:
    return httpx.get(app.base_url + path, headers={"Accept-Encoding": encoding}, timeout=30)


def test_the_app_sends_brotli_to_browsers_that_take_it_else_gzip(live_app: RunningApp) -> None:
    original = (NICEGUI_STATIC / QUASAR).read_bytes()
    path = URL_PREFIX + QUASAR
    # the first start of an install compresses in the background (dev.py and the image do it beforehand)
    wait_until(
        lambda: _get(live_app, path, "br").headers.get("content-encoding") == "br",
        poll=0.2,
        what="Quasar's script sent with Brotli",
    )
    answer = _get(live_app, path, "gzip, deflate, br, zstd")  # Chromium's
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "br"
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "Accept-Encoding" in answer.headers["vary"]
    assert "immutable" in answer.headers["cache-control"]
    assert answer.headers["x-content-type-options"] == "nosniff"  # the app's headers, as on every answer
    assert answer.headers["x-request-id"]
    assert answer.content == original  # httpx decodes Brotli
    assert int(answer.headers["content-length"]) < len(gzip.compress(original, 9))

    gzipped = _get(live_app, path, "gzip")
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == original
    plain = _get(live_app, path, "identity")
    assert "content-encoding" not in plain.headers
    assert plain.content == original

    missing = _get(live_app, URL_PREFIX + "no-such-file.js", "br")
    assert missing.status_code == 404
    escaped = _get(live_app, URL_PREFIX + "..%2f..%2fapp%2fmain.py", "br")
    assert escaped.status_code == 404


def test_the_dashboards_plotly_module_is_compressed_once_too() -> None:
    """plotly.js (4.6 MB, an ES module of NiceGUI's, far above the static files' size cap) is among the
    files compressed ahead of time, served under its module's URL."""
    prefixes = {assets.prefix: assets for assets in static_assets.page_assets()}
    plotly_url = static_assets.module_url("nicegui-plotly")
    prefix = plotly_url.removesuffix("index.js")
    assert prefix in prefixes and URL_PREFIX in prefixes
    assert [path.name for path in prefixes[prefix].files] == ["index.js"]
    assert prefixes[prefix].files[0].stat().st_size > 4_000_000
    with pytest.raises(LookupError):
        static_assets.module_url("nicegui-no-such-module")


def test_the_app_sends_plotly_with_brotli_in_one_piece(live_app: RunningApp) -> None:
    """NiceGUI would gzip the 4.6 MB module in 64 KB pieces on every request (about half a second of a
    first dashboard visit); the compressed copy is sent as it is (0.96 MB)."""
    path = static_assets.module_url("nicegui-plotly")
    prefix, source = static_assets.esm_module("nicegui-plotly")
    original = (source / "index.js").read_bytes()
    wait_until(
        lambda: _get(live_app, path, "br").headers.get("content-encoding") == "br",
        poll=0.2,
        what="plotly.js sent with Brotli",
    )
    answer = _get(live_app, path, "gzip, deflate, br, zstd")
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "br"
    assert "immutable" in answer.headers["cache-control"]
    assert answer.content == original
    assert int(answer.headers["content-length"]) < len(original) // 4
    assert _get(live_app, prefix + "..%2f..%2f..%2fnicegui.py", "br").status_code in (403, 404)
