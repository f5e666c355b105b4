"""The pages' Tailwind CSS is compiled ahead of time (tests/tailwind_build.py): the committed file is what
the build makes of today's source, and the pages load it instead of Tailwind's browser build."""

from __future__ import annotations

import re

import httpx

from tests.helpers import HANG_SECONDS, RunningApp
from tests.tailwind_build import OUTPUT, build, built_with, candidates, class_selectors

STYLESHEET = re.compile(r'<link rel="stylesheet" href="(/_pyaichat/static/tailwind-[0-9a-f]{16}\.css)">')


def test_the_committed_css_is_what_the_build_makes_of_the_source() -> None:
    committed, fresh = OUTPUT.read_text(encoding="utf-8"), build()
    stale = "pages/tailwind.css is out of date: run `python -m tests.tailwind_build` and commit it"
    if built_with(committed) == built_with(fresh):
        assert committed == fresh, stale
    else:  # another NiceGUI here (pyproject allows a range): no class of the pages may be missing
        assert class_selectors(fresh) <= class_selectors(committed), stale


def test_candidates_are_the_words_of_string_literals(tmp_path) -> None:
    source = tmp_path / "page.py"
    source.write_text(
        'ui.label(note).classes("text-sm gap-2")\nname = f"w-[{width}px] md:flex"\nflex_grow = 1  # p-4\n'
    )
    found = candidates([source])
    assert {"text-sm", "gap-2", "md:flex"} <= found
    assert "flex_grow" not in found and "p-4" not in found, "names and comments are not candidates"


def test_pages_load_the_compiled_css_and_not_the_browser_build(live_app: RunningApp) -> None:
    with httpx.Client(base_url=live_app.base_url, timeout=HANG_SECONDS) as http:
        for path in ("/", "/login", "/admin/login"):
            page = http.get(path).text
            assert "tailwindcss.min.js" not in page and 'type="text/tailwindcss"' not in page, path
            [href] = re.findall(STYLESHEET, page)
            css = http.get(href)
            assert css.status_code == 200 and css.text == OUTPUT.read_text(encoding="utf-8")
            assert css.headers["content-type"].startswith("text/css")
            assert "max-age=31536000" in css.headers["cache-control"]
