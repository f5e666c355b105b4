"""Where a streaming answer may be cut into pieces that are rendered once and never again."""

from __future__ import annotations

import random
import re

import pytest
from nicegui.elements.markdown import prepare_content

from pages.message_view import settled_length

EXTRAS = "fenced-code-blocks tables"  # ui.markdown's defaults

REALISTIC_ANSWER = """# 标题 Title

Intro paragraph with **bold** and `code`.
Second line of the same paragraph.

## Steps

1. First step
2. Second step

   Continued paragraph inside item two.

3. Third step

A paragraph after the list.

- bullet a
- bullet b

> a quote
> more quote

Table:

| a | b |
|---|---|
| 1 | 2 |

```python
def f():

    return 1
```

Text after code.

    indented code block

<div>raw

html</div>

Final words.

---

The end.
"""


@pytest.mark.parametrize(
    ("text", "settled"),
    [
        ("a\n\nb\n", "a\n\n"),
        ("a\n\nb", ""),  # the next block's first line is still being written
        ("a\nb\n\nc\nd\n\ne\n", "a\nb\n\nc\nd\n\n"),
        ("- x\n\npara\n", ""),  # next to a list
        ("- x\n\npara\n\nnext\n", "- x\n\npara\n\n"),
        ("1. x\n\n   continued\n\nnext\n", ""),  # a list item's second paragraph
        ("para\n\n    code\n\nmore\n", ""),  # an indented code block
        ("```py\ncode\n\nmore code\n```\n\nafter\n", "```py\ncode\n\nmore code\n```\n\n"),
        ("```py\ncode\n\nmore code\n", ""),  # inside an open fence
        ("# T\n\ntext\n", "# T\n\n"),
        ("> q\n\ntext\n\nz\n", "> q\n\ntext\n\n"),
        ("text\n\n<div>\n\n</div>\n", ""),  # raw HTML
        ("| a | b |\n|---|---|\n| 1 | 2 |\n\nz\n", "| a | b |\n|---|---|\n| 1 | 2 |\n\n"),
    ],
)
def test_settled_length(text: str, settled: str) -> None:
    assert text[: settled_length(text)] == settled


def _html(markdown: str) -> str:
    return re.sub(r">\s+<", "><", prepare_content(markdown, EXTRAS)).strip()


@pytest.mark.parametrize("seed", range(60))
def test_pieces_render_exactly_like_the_whole_answer(seed: int) -> None:
    """Streamed in random chunk sizes and cut wherever settled_length allows, the pieces' HTML put
    together is the whole answer's HTML."""
    rnd = random.Random(seed)
    content, settled, pieces, position = "", 0, [], 0
    while position < len(REALISTIC_ANSWER):
        size = rnd.randint(1, 12)
        content += REALISTIC_ANSWER[position : position + size]
        position += size
        tail = content[settled:]
        if len(tail) >= 20 and (cut := settled_length(tail)) > 0:
            pieces.append(tail[:cut])
            settled += cut
    pieces.append(content[settled:])
    assert len(pieces) > 3
    assert "".join(_html(piece) for piece in pieces) == _html(REALISTIC_ANSWER)
