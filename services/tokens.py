"""Token estimates for calls whose upstream reports no usage.

A rough tokenizer-free rule that holds up for mixed text: each CJK character (Chinese, Japanese kana,
Korean) counts as about one token, other text as about one token per four characters; every message
adds a few tokens of framing, as OpenAI's chat format does.
"""

from __future__ import annotations

import math
import re
from typing import Any

_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
MESSAGE_OVERHEAD = 4


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    wide = len(_WIDE.findall(text))
    narrow = len(text) - wide
    return wide + math.ceil(narrow / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: count the text parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(MESSAGE_OVERHEAD + estimate_text_tokens(_content_text(m.get("content"))) for m in messages) + 3
