"""Reasoning normalisation: ``reasoning`` fields and a leading ``<think>…</think>`` block in the content
both become ``reasoning_content``, the field the gateway delivers.

Only a block at the very start of the answer counts as thinking (that is how reasoning models emit it);
an answer that merely mentions ``<think>`` later on is left alone.
"""

from __future__ import annotations

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

_START, _THINKING, _AFTER_THINKING, _PLAIN = 0, 1, 2, 3


def _partial_suffix(text: str, tag: str) -> int:
    """How many trailing characters of ``text`` could begin ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkTagSplitter:
    """Splits streamed content into ``(reasoning, content)``; tags may be cut anywhere across chunks."""

    __slots__ = ("_held", "_state")

    def __init__(self) -> None:
        self._held = ""
        self._state = _START

    @property
    def passthrough(self) -> bool:
        """True once the rest of the stream is plain content (the cheap path)."""
        return self._state == _PLAIN

    def feed(self, text: str) -> tuple[str, str]:
        if self._state == _PLAIN:
            return "", text
        if self._state == _AFTER_THINKING:  # drop the blank lines between the block and the answer
            text = text.lstrip("\r\n")
            if text:
                self._state = _PLAIN
            return "", text
        buffer = self._held + text
        self._held = ""
        if self._state == _START:
            stripped = buffer.lstrip()
            if not stripped or (len(stripped) < len(OPEN_TAG) and OPEN_TAG.startswith(stripped)):
                self._held = buffer
                return "", ""
            if not stripped.startswith(OPEN_TAG):
                index = buffer.find(CLOSE_TAG)
                if index >= 0 and OPEN_TAG not in buffer[:index]:  # the block opened in the prompt
                    self._state = _AFTER_THINKING
                    return buffer[:index], self.feed(buffer[index + len(CLOSE_TAG) :])[1]
                self._state = _PLAIN
                return "", buffer
            self._state = _THINKING
            buffer = stripped[len(OPEN_TAG) :]
        index = buffer.find(CLOSE_TAG)
        if index >= 0:
            self._state = _AFTER_THINKING
            return buffer[:index], self.feed(buffer[index + len(CLOSE_TAG) :])[1]
        keep = _partial_suffix(buffer, CLOSE_TAG)
        if keep:
            self._held = buffer[-keep:]
            buffer = buffer[:-keep]
        return buffer, ""

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return (held, "") if self._state == _THINKING else ("", held)


def split_think_tags(text: str) -> tuple[str, str]:
    """``(reasoning, content)`` of a complete answer. An answer with a ``</think>`` and no ``<think>``
    before it (vLLM-served R1 distills, whose chat template already opened the block in the prompt) has
    its text before the tag as reasoning."""
    close = text.find(CLOSE_TAG)
    if close >= 0 and OPEN_TAG not in text[:close]:
        return text[:close].strip(), text[close + len(CLOSE_TAG) :].lstrip("\r\n")
    splitter = ThinkTagSplitter()
    reasoning, content = splitter.feed(text)
    tail_reasoning, tail_content = splitter.flush()
    return reasoning + tail_reasoning, content + tail_content
