"""Model output as HTML that can do nothing on its own: no script, no request, no form, no style.

An answer is Markdown written by a model, and a model repeats what it reads (a web page, a file, a
prompt injection), so its output is treated as hostile. NiceGUI converts the Markdown on the server
(markdown2); the HTML is then sanitised here, on the server, with ``nh3`` (ammonia, an allow-list
sanitiser built on a spec-compliant HTML parser), before it is sent to the browser. What survives:

- text structure: paragraphs, headings, lists, quotes, tables (their ``text-align`` only), code and
  the syntax-highlighting classes of code blocks, emphasis;
- links to ``http``, ``https`` and ``mailto`` URLs, opened in a new tab with
  ``rel="noopener noreferrer"`` (other schemes, ``javascript:`` and ``data:`` included, and relative
  URLs lose their ``href``);
- images as links (``[图片：alt]``) to the image: nothing is fetched until the reader clicks.

Everything else goes: scripts, styles, ``style`` and event attributes, forms and their controls,
iframes, objects, embeds, ``meta``/``base``/``link``, ``id``/``name`` (DOM clobbering), and every class
outside the short list below (utility classes are styles: ``fixed inset-0`` can cover the page).

Math (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``) is taken out of the Markdown before it is converted
(so ``_`` and ``*`` in a formula stay TeX), rendered by KaTeX on the server (``pykatex``: KaTeX in an
embedded QuickJS, no Node, nothing from a CDN) to MathML, which the browser draws itself with no font or
stylesheet to load, and put back after the sanitiser; the MathML goes through its own allow-list (KaTeX
runs with ``trust`` off, so ``\\href``, ``\\url`` and ``\\htmlClass`` render as red text, never a link).
Fenced code blocks get a header with their language and a copy button, also while they stream (an open
fence is closed for the render).

Why on the server: NiceGUI's client-side DOMPurify keeps images, forms and styles by default and is
configured for the whole page; one Python function is one place to read, unit-test and keep strict, it
runs once per render (not once per open tab), and it is cheap next to the Markdown conversion it follows:
3.5 % of markdown2's time for prose (0.08 ms against 2.6 ms for a 1,000-character tail, 0.17 against
4.9 ms for 2,000), 14 % for a highlighted 1,600-character code block (2.0 against 14 ms), medians of five
rounds on a loaded 2-core machine. The render throttling in ``message_view`` spaces renders by their
measured cost, this included.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

import nh3
import pykatex  # type: ignore[import-not-found]  # (no type information shipped)
from nicegui import ui
from pygments.token import STANDARD_TYPES

IMAGE_LINK_CLASS = "md-image"
_TEXT_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "kbd", "samp"),
    *("strong", "b", "em", "i", "u", "s", "del", "ins", "sub", "sup", "mark", "small", "abbr"),
    *("ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"),
    *("a", "span", "div"),
}
# dropped with their content: what they hold is code, markup or a document, never text for the reader
_DROPPED_WITH_CONTENT = {
    *("script", "style", "template", "noscript", "iframe", "frame", "frameset", "object", "noembed"),
    *("svg", "math", "title", "textarea", "select", "head"),
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "th": {"style", "colspan", "rowspan"},
    "td": {"style", "colspan", "rowspan"},
}
_CLASSES = {
    "div": {"codehilite"},  # markdown2's highlighted code block; its spans carry Pygments' token classes
    "span": {name for name in STANDARD_TYPES.values() if name},
    "a": {IMAGE_LINK_CLASS},
}
_CLEANER_OPTIONS: dict[str, Any] = {
    "clean_content_tags": _DROPPED_WITH_CONTENT,
    "allowed_classes": _CLASSES,
    "url_schemes": {"http", "https", "mailto"},
    "url_relative": "deny",  # a relative link would open a page of this app (with the reader's cookies)
    "filter_style_properties": {"text-align"},  # markdown2's table column alignment
    "link_rel": "noopener noreferrer",
    "set_tag_attribute_values": {"a": {"target": "_blank"}},
    "strip_comments": True,
}
# the final pass: nothing that loads by itself
_CLEANER = nh3.Cleaner(tags=_TEXT_TAGS, attributes=_ATTRIBUTES, **_CLEANER_OPTIONS)
# the first pass when the HTML has images: they are kept (with a checked ``src``) to become links
_WITH_IMAGES = nh3.Cleaner(
    tags=_TEXT_TAGS | {"img"},
    attributes={**_ATTRIBUTES, "img": {"src", "alt", "title"}},
    **_CLEANER_OPTIONS,
)
# ammonia writes every attribute as name="value" with '"' escaped, so a tag ends at the first '>' that
# follows complete attributes
_IMG = re.compile(r'<img((?:\s+[\w:-]+="[^"]*")*)\s*/?>')
_ATTRIBUTE = re.compile(r'([\w:-]+)="([^"]*)"')
_HAS_IMAGE = re.compile(r"<img", re.IGNORECASE)


def _image_as_link(match: re.Match[str]) -> str:
    attributes = {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(match.group(1))}
    described = attributes.get("alt", "").strip() or attributes.get("title", "").strip()
    label = f"[图片：{described}]" if described else "[图片]"  # (an emoji may have no font to show it)
    source = attributes.get("src")
    if not source:
        return html.escape(label, quote=False)
    return (
        f'<a href="{html.escape(source)}" title="{html.escape(source)}" class="{IMAGE_LINK_CLASS}">'
        f"{html.escape(label, quote=False)}</a>"
    )


def sanitize_answer_html(markup: str) -> str:
    """The HTML of a model's answer with only what :mod:`this module <pages.safe_markdown>` allows."""
    if _HAS_IMAGE.search(markup):
        markup = _IMG.sub(_image_as_link, _WITH_IMAGES.clean(markup))
    return _CLEANER.clean(markup)


# math and code-block headers travel through Markdown and the sanitiser as private-use characters
# (markdown2 and ammonia keep them as text): kind, the hex of the TeX or the language, end
_OPEN, _CLOSE = "\ue000", "\ue001"
_TOKEN = re.compile(_OPEN + r"([IDC])([0-9a-f]*)" + _CLOSE)
_CODE_HEAD = re.compile(
    r"<p>" + _OPEN + r"C([0-9a-f]*)" + _CLOSE + r"</p>\s*"
    r'(<div class="codehilite">.*?</div>|<pre>.*?</pre>)',
    re.DOTALL,
)
_FENCE_LINE = re.compile(r"^```", re.MULTILINE)
_SOURCE = re.compile(
    r"(?P<fence>^```(?P<lang>[\w#+.-]*)[^\n]*\n.*?(?:^```[^\n]*$|\Z))"  # a fenced block at the margin
    r"|(?P<ticks>`+).+?(?P=ticks)"  # inline code
    r"|\$\$(?P<display>.+?)\$\$"
    r"|\\\[(?P<display2>.+?)\\\]"
    r"|\\\((?P<inline2>.+?)\\\)"
    # $…$: no space inside either dollar, no digit right after the closing one ("$5 and $10" is money)
    r"|(?<![\\$\w])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?!\d)",
    re.DOTALL | re.MULTILINE,
)
_MATH_TAGS = {
    *("math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mpadded"),
    *("msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "mover", "munder", "munderover"),
    *("mtable", "mtr", "mtd", "mphantom", "menclose", "merror", "mglyph", "mmultiscripts", "mprescripts"),
    *("none", "span"),
}
_MATH_ATTRIBUTES = {
    "math": {"display", "xmlns"},
    "annotation": {"encoding"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "minsize", "maxsize", "movablelimits"},
    "mstyle": {"mathcolor", "scriptlevel", "displaystyle", "mathsize"},
    "mtext": {"mathvariant"},
    "mi": {"mathvariant"},
    "mspace": {"width", "height", "depth"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "mfrac": {"linethickness"},
    "mtable": {"rowspacing", "columnspacing", "columnalign", "rowlines", "columnlines"},
    "mtd": {"columnalign"},
    "menclose": {"notation"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "span": {"title"},
}
_MATH_CLEANER = nh3.Cleaner(
    tags=_MATH_TAGS,
    attributes=_MATH_ATTRIBUTES,
    allowed_classes={"span": {"katex", "katex-display", "katex-error"}},
    url_schemes=set(),
    strip_comments=True,
)


def _hex(text: str) -> str:
    return text.encode("utf-8").hex()


def _protect(match: re.Match[str]) -> str:
    if match.group("fence") is not None:
        language = match.group("lang") or "text"
        return f"{_OPEN}C{_hex(language)}{_CLOSE}\n\n{match.group('fence')}"
    if match.group("ticks") is not None:
        return match.group(0)
    display = match.group("display") or match.group("display2")
    if display is not None:
        return f"{_OPEN}D{_hex(display.strip())}{_CLOSE}"
    inline = match.group("inline") or match.group("inline2") or ""
    return f"{_OPEN}I{_hex(inline.strip())}{_CLOSE}"


def prepare_answer(content: str) -> str:
    """The Markdown as it is converted: math set aside, a header marker before each fenced block, and
    an open fence (still streaming) closed."""
    if len(_FENCE_LINE.findall(content)) % 2:
        content += "\n```"
    return _SOURCE.sub(_protect, content)


@lru_cache(maxsize=2048)
def render_math(tex: str, display: bool) -> str:
    """TeX as KaTeX's MathML, sanitised; a formula KaTeX cannot read shows as its source, in red."""
    try:
        markup = pykatex.renderToString(
            tex, displayMode=display, output="mathml", throwOnError=False, strict="ignore", trust=False
        )
    except Exception:  # pykatex is young: whatever it raises, the formula shows as text
        return f'<span class="katex-error">{html.escape(tex)}</span>'
    rendered = _MATH_CLEANER.clean(markup)
    return f'<span class="katex-display">{rendered}</span>' if display else rendered


def _decode(hexed: str) -> str | None:
    try:
        return bytes.fromhex(hexed).decode("utf-8")
    except ValueError:
        return None


def _code_head(match: re.Match[str], copy_label: str) -> str:
    label = html.escape(copy_label)
    language = html.escape(_decode(match.group(1)) or "text")
    return (
        '<div class="code-block"><div class="code-head">'
        f'<span class="code-lang">{language}</span>'
        f'<button type="button" class="code-copy" aria-label="{label}" title="{label}">{label}</button>'
        f"</div>{match.group(2)}</div>"
    )


def _restore(match: re.Match[str]) -> str:
    kind, hexed = match.group(1), match.group(2)
    text = _decode(hexed)
    if text is None or kind == "C":
        return ""
    return render_math(text, kind == "D")


def render_answer_html(markup: str, copy_label: str = "Copy") -> str:
    """markdown2's HTML of :func:`prepare_answer`'s Markdown → what the browser gets: sanitised, then the
    math and the code headers (the app's own markup) put in."""
    cleaned = sanitize_answer_html(markup)
    if _OPEN not in cleaned:
        return cleaned
    return _TOKEN.sub(_restore, _CODE_HEAD.sub(lambda match: _code_head(match, copy_label), cleaned))


class AnswerMarkdown(ui.markdown):
    """A Markdown element for model output: converted and sanitised on the server (NiceGUI then sets the
    HTML as it is, without its own client-side sanitising, which would also drop ``target``), with math
    and code-block headers."""

    def __init__(self, content: str = "", *, copy_label: str = "Copy") -> None:
        super().__init__(content, sanitize=lambda markup: render_answer_html(markup, copy_label))

    def _handle_content_change(self, content: str) -> None:
        super()._handle_content_change(prepare_answer(content))


def answer_markdown(content: str = "", *, copy_label: str = "Copy") -> ui.markdown:
    return AnswerMarkdown(content, copy_label=copy_label)
