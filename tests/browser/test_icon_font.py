"""The pages' icon font is NiceGUI's Material Icons cut down to the icons they can show
(tests/icon_font_build.py): the committed file is what the build makes of today's source and NiceGUI,
the pages fetch it instead of the whole font, and every icon on them is drawn as an icon."""

from __future__ import annotations

from fontTools.ttLib import TTFont
from selenium.webdriver.common.by import By

from tests.browser.conftest import undrawn_icons
from tests.browser.test_chat_browser import open_chat, wait
from tests.helpers import RunningApp
from tests.icon_font_build import OUTPUT, build, full_font, icon_names, ligatures
from tests.tailwind_build import candidates

_FETCHED = "return performance.getEntriesByType('resource').map(e => e.name)"


def test_the_committed_font_is_what_the_build_makes_of_the_source() -> None:
    """The same icons as a build from today's source and NiceGUI would keep (compared by name: the
    bytes differ between fontTools and brotli versions)."""
    committed = set(ligatures(TTFont(OUTPUT)))
    full = ligatures(TTFont(full_font()))
    glyphs = {full[name] for name in icon_names(candidates(), TTFont(full_font()))}
    wanted = {name for name, glyph in full.items() if glyph in glyphs}  # with their other names
    stale = "pages/material-icons.woff2 is out of date: run `python -m tests.icon_font_build` and commit it"
    assert committed == wanted, (
        f"{stale}; missing {sorted(wanted - committed)}, extra {sorted(committed - wanted)}"
    )


def test_the_build_keeps_the_icons_it_is_given(tmp_path) -> None:
    rebuilt = tmp_path / "icons.woff2"
    rebuilt.write_bytes(build())
    assert set(ligatures(TTFont(rebuilt))) == set(ligatures(TTFont(OUTPUT)))


def test_the_cut_down_font_keeps_only_the_named_icons() -> None:
    icons = ligatures(TTFont(OUTPUT))
    assert {"send", "stop", "dark_mode", "translate", "arrow_drop_down", "content_copy"} <= icons.keys()
    assert "airplanemode_active" not in icons and len(icons) < len(ligatures(TTFont(full_font()))) / 4


def test_the_chat_page_fetches_the_cut_down_font_and_draws_every_icon(
    driver, browser_app: RunningApp
) -> None:
    open_chat(driver, browser_app)
    driver.find_element(By.CSS_SELECTOR, ".model-select").click()  # a menu, with Quasar's own icons
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".q-menu"))
    assert undrawn_icons(driver) == []
    # the check itself: an icon the cut-down font lacks shows its name as text, and is reported
    driver.execute_script(
        "const i = document.createElement('i'); i.className = 'q-icon notranslate material-icons';"
        "i.textContent = 'airplanemode_active'; document.body.append(i);"
    )
    assert undrawn_icons(driver) == ["airplanemode_active"]
    fetched = [name for name in driver.execute_script(_FETCHED) if name.endswith(".woff2")]
    assert any("/_pyaichat/static/material-icons-" in name for name in fetched), fetched
    assert not any(full_font().name in name for name in fetched), "the whole font was fetched too"
    # and no other web font: the text is in the system's UI font, not Roboto (35 KB more on a first load)
    assert all("/_pyaichat/static/material-icons-" in name for name in fetched), fetched
    body_font = driver.execute_script("return getComputedStyle(document.body).fontFamily")
    assert body_font.startswith("system-ui") and "Roboto" not in body_font, body_font
    # the app's mark is inline: no request for a favicon
    icon = driver.execute_script("return document.querySelector('link[rel~=icon]').href")
    assert icon.startswith("data:image/svg+xml"), icon
