"""``pages/material-icons.woff2``: the Material Icons font cut down to the icons the pages can show
(issue 19: the first load of ``/``).

NiceGUI's page loads Google's whole Material Icons font (129 KB, about 2,200 icons) for the forty or so
icons the pages name and the few that Quasar's components draw (a select's arrow, a table's paging). An
icon is a ligature: the font turns the letters of its name into its glyph. fontTools' subsetter keeps
the letters, digits and ``_``, the glyph of every icon whose name is a *candidate* word (the same scan
as ``tests/tailwind_build.py``: every word of the string literals in ``pages/`` and ``app/`` and of
NiceGUI's and Quasar's scripts), and the ligatures that lead to those glyphs and no others. The result
(about 20 KB) is declared for the family ``Material Icons`` by ``pages/theme.py``, outside the cascade
layers, so it wins over NiceGUI's own declaration and the full font is never fetched.

``python -m tests.icon_font_build`` writes the file; ``tests/browser/test_icon_font.py`` builds it again
and fails when the committed one differs, and checks in Chromium that every icon on the pages is drawn
as one glyph (an icon missing from the font would show its name as text).
"""

from __future__ import annotations

import io
import re
import string
import sys
from pathlib import Path

import nicegui
from fontTools import subset
from fontTools.ttLib import TTFont

from tests.helpers import ROOT
from tests.tailwind_build import candidates

OUTPUT = ROOT / "pages" / "material-icons.woff2"
NICEGUI = Path(nicegui.__file__).parent
_FACE = re.compile(r'font-family: "Material Icons";[^}]*?src: url\(([^)]+)\)', re.DOTALL)
# a name inside a word: ``icon=name``, ``'name'`` in props, ``name:`` in Quasar's icon set
_PARTS = re.compile(r"[=:,;()\[\]]")
NAME_CHARACTERS = string.ascii_lowercase + string.digits + "_"


def full_font() -> Path:
    """The font file NiceGUI's ``fonts.css`` gives the family ``Material Icons``."""
    css = (NICEGUI / "static" / "fonts.css").read_text(encoding="utf-8")
    match = _FACE.search(css)
    if match is None:
        raise AssertionError("NiceGUI's fonts.css no longer declares the Material Icons font")
    return NICEGUI / "static" / match.group(1)


def ligatures(font: TTFont) -> dict[str, str]:
    """Every icon of the font: its name → its glyph."""
    letters = {glyph: chr(code) for code, glyph in font.getBestCmap().items()}
    found: dict[str, str] = {}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for table in lookup.SubTable:
            table = getattr(table, "ExtSubTable", table)  # an extension lookup wraps the real one
            for first, sequences in getattr(table, "ligatures", {}).items():
                for sequence in sequences:
                    name = letters[first] + "".join(letters[glyph] for glyph in sequence.Component)
                    found[name] = sequence.LigGlyph
    return found


def icon_names(words: set[str], font: TTFont) -> list[str]:
    parts = {part for word in words for part in _PARTS.split(word)}
    return sorted(parts & ligatures(font).keys())


def build() -> bytes:
    font = TTFont(full_font(), recalcTimestamp=False)  # the same bytes from the same input
    names = icon_names(candidates(), font)
    glyphs = ligatures(font)
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_closure = False  # else every ligature of the kept letters comes back: all 2,200 icons
    options.layout_features = ["liga", "rlig", "ccmp", "calt"]
    options.name_IDs = ["*"]  # the font's names and its licence notice stay
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(glyphs=[glyphs[name] for name in names], unicodes=[ord(c) for c in NAME_CHARACTERS])
    subsetter.subset(font)
    out = io.BytesIO()
    font.flavor = "woff2"
    font.save(out)
    return out.getvalue()


if __name__ == "__main__":
    OUTPUT.write_bytes(build())
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size:,} bytes)", file=sys.stderr)
