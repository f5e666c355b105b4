"""Reasoning normalisation: ``reasoning`` fields and a leading ``<think>…</think>`` block in the content
both become ``reasoning_content``, the field the gateway delivers.

Only a block at the very start of the answer counts as thinking (that is how reasoning models emit it);
an answer that merely mentions ``<think>`` later on is left alone.

A ``</think>`` without an opening tag (vLLM-served R1 distills, whose chat template opens the block in
the prompt) makes the text before it reasoning. A stream cannot take back text it has sent, so whether
a channel's model answers that way is learnt per channel and upstream model (:class:`ThinkStyle`):

- ``untagged`` (a ``</think>`` without ``<think>`` was seen): the stream is reasoning from its first
  character until ``</think>``, delivered live, held back for nothing but a tag cut across chunks;
- ``plain`` (a complete answer came without one): nothing is held back; only a ``</think>`` in the first
  chunk is still split (what arrives in one piece costs no wait);
- ``unknown`` (the first stream of a channel after a start or a change): the content is held back while
  looking for ``</think>``, at most :data:`UNTAGGED_HOLD_CHARS` characters or
  :data:`UNTAGGED_HOLD_SECONDS` seconds (whichever comes first); then it goes out as the answer.

Every finished answer (streamed or not) teaches the style for the next calls, and a ``plain`` channel
whose stream shows an untagged ``</think>`` later on becomes ``untagged`` from its next call on.
"""

from __future__ import annotations

import time
from typing import Literal

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
# The bound of the hold on a channel whose style is unknown: 1,000 characters (about 250 English tokens)
# or 1 s from the first character, whichever comes first; the time runs also while no chunk comes (the
# stream releases the text then, services/chat.py). A first token 1 s late, once per channel and
# process, is the price; short reasoning fits in it, longer reasoning of a first call is caught from the
# next call on (the style is learnt when an answer ends).
UNTAGGED_HOLD_CHARS = 1000
UNTAGGED_HOLD_SECONDS = 1.0

ThinkStyle = Literal["unknown", "untagged", "plain"]

_START, _HOLDING, _THINKING, _AFTER_THINKING, _PLAIN = 0, 1, 2, 3, 4


def _partial_suffix(text: str, tag: str) -> int:
    """How many trailing characters of ``text`` could begin ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def untagged_close(text: str) -> int:
    """Where a ``</think>`` with no ``<think>`` before it starts in ``text``, or -1."""
    index = text.find(CLOSE_TAG)
    return index if index >= 0 and OPEN_TAG not in text[:index] else -1


class ThinkTagSplitter:
    """Splits streamed content into ``(reasoning, content)``; tags may be cut anywhere across chunks.

    ``style`` is what is known of the channel (see the module's docstring); :attr:`untagged` is what
    this answer showed, for the next calls."""

    __slots__ = ("_held", "_hold_since", "_opened", "_state", "_style", "_watch_tail", "untagged")

    def __init__(self, style: ThinkStyle = "plain") -> None:
        self._held = ""
        self._state = _START
        self._style = style
        self._hold_since = 0.0
        self._opened = False  # whether the block began with ``<think>``
        self._watch_tail = ""  # the end of the content sent on, for a ``</think>`` cut across chunks
        self.untagged = False  # whether a ``</think>`` without ``<think>`` came

    @property
    def passthrough(self) -> bool:
        """True once the rest of the stream is plain content (the cheap path: :meth:`watch` only)."""
        return self._state == _PLAIN

    def hold_left(self) -> float | None:
        """Seconds the text held back while looking for ``</think>`` may still wait; None when none is."""
        if self._state != _HOLDING:
            return None
        return max(0.0, UNTAGGED_HOLD_SECONDS - (time.monotonic() - self._hold_since))

    def release(self) -> str:
        """The bound ran out with no new chunk: the held text goes out as the answer now."""
        if self._state != _HOLDING:
            return ""
        held, self._held = self._held, ""
        return self._plain(held)[1]

    def watch(self, text: str) -> None:
        """Content passed through unchanged: notice an untagged ``</think>`` for the next calls."""
        if self.untagged:
            return
        if self._watch_tail:
            text, self._watch_tail = self._watch_tail + text, ""
        elif "<" not in text:  # the common case: one test, nothing kept
            return
        if CLOSE_TAG in text:
            self.untagged = True
            return
        keep = _partial_suffix(text, CLOSE_TAG)
        if keep:
            self._watch_tail = text[-keep:]

    def _plain(self, text: str) -> tuple[str, str]:
        self._state = _PLAIN
        self.watch(text)
        return "", text

    def _closed(self, reasoning: str, rest: str) -> tuple[str, str]:
        """The block ended: ``rest`` follows it (blank lines after the tag dropped)."""
        self._state = _AFTER_THINKING
        return reasoning, self.feed(rest)[1]

    def feed(self, text: str) -> tuple[str, str]:
        if self._state == _PLAIN:
            return self._plain(text)
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
            if stripped.startswith(OPEN_TAG):
                self._state = _THINKING
                self._opened = True
                buffer = stripped[len(OPEN_TAG) :]
            elif self._style == "untagged":
                self._state = _THINKING
                buffer = stripped
            elif self._style == "unknown":
                self._state = _HOLDING
                self._hold_since = time.monotonic()
            else:
                index = untagged_close(buffer)
                if index >= 0:  # the block opened in the prompt, and closes within the first chunk
                    self.untagged = True
                    return self._closed(buffer[:index], buffer[index + len(CLOSE_TAG) :])
                return self._plain(buffer)
        if self._state == _HOLDING:
            index = buffer.find(CLOSE_TAG)
            if index >= 0 and OPEN_TAG not in buffer[:index]:
                self.untagged = True
                return self._closed(buffer[:index], buffer[index + len(CLOSE_TAG) :])
            waited = time.monotonic() - self._hold_since
            over = len(buffer) > UNTAGGED_HOLD_CHARS or waited > UNTAGGED_HOLD_SECONDS
            if index >= 0 or OPEN_TAG in buffer or over:  # a tag quoted in an answer, or too long to wait
                return self._plain(buffer)
            self._held = buffer
            return "", ""
        index = buffer.find(CLOSE_TAG)
        if index >= 0:
            self.untagged = self.untagged or not self._opened
            return self._closed(buffer[:index], buffer[index + len(CLOSE_TAG) :])
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
    before it has its text before the tag as reasoning, wherever the tag is (nothing waits here)."""
    close = untagged_close(text)
    if close >= 0:
        return text[:close].strip(), text[close + len(CLOSE_TAG) :].lstrip("\r\n")
    splitter = ThinkTagSplitter()
    reasoning, content = splitter.feed(text)
    tail_reasoning, tail_content = splitter.flush()
    return reasoning + tail_reasoning, content + tail_content
