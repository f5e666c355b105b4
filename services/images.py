"""Image attachments of chat messages: which files are images (by their first bytes, never by their
name), the limits the chat page applies before sending, and whether a request carries images.

Images are never stored: the page keeps them in memory until the message is sent, and the request
carries them as OpenAI ``image_url`` parts with ``data:`` URLs."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # per image
MAX_IMAGES = 5  # per message
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
IMAGE_PART_TYPES = frozenset({"image_url", "input_image"})


def sniff_image(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, WebP or GIF from its magic bytes; None for anything else (a text
    file renamed ``.png`` is not an image)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def user_content(text: str, image_urls: Iterable[str]) -> str | list[dict[str, Any]]:
    """A user message's ``content``: the text alone, or OpenAI content parts when images come along."""
    urls = list(image_urls)
    if not urls:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [image_part(url) for url in urls]


def has_images(messages: Any) -> bool:
    """Whether any message of a request body carries an image part."""
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES for part in content
        ):
            return True
    return False
