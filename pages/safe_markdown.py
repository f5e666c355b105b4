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
from typing import Any

import nh3
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


def answer_markdown(content: str = "") -> ui.markdown:
    """A Markdown element for model output: converted and sanitised on the server (NiceGUI then sets the
    HTML as it is, without its own client-side sanitising, which would also drop ``target``)."""
    return ui.markdown(content, sanitize=sanitize_answer_html)
