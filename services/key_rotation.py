"""Moving the secrets stored encrypted (channels' API keys, proxy URLs and header values) from one
``ENCRYPTION_KEY`` to another: ``python -m app rotate-encryption-key`` (docs/operations.md).

All or nothing: every stored value is decrypted with the old key (or found already under the new one, so
that running the command twice is harmless) before any row changes, and the rows change in one
transaction. A value that neither key opens stops the rotation with nothing changed: it names the
channel and the field, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.models import Channel
from services.security import KeyCipher

ENCRYPTED_FIELDS = ("api_key", "proxy", "headers")


class RotationError(Exception):
    """A stored value opens with neither key; nothing was changed."""


@dataclass(frozen=True)
class RotationResult:
    rotated: int  # values moved from the old key to the new one
    already_new: int  # values the new key already opened (an earlier run, or a channel saved since)


def rotate_encryption_key(engine: Engine, *, old_key: str, new_key: str) -> RotationResult:
    """Re-encrypt every channel secret under ``new_key``. Raises :class:`RotationError` (nothing changed)
    when a value opens with neither key, and ValueError when the two keys are the same."""
    if old_key == new_key:
        raise ValueError("the old and the new ENCRYPTION_KEY are the same")
    old, new = KeyCipher(old_key), KeyCipher(new_key)
    rotated = already_new = 0
    with Session(engine) as session:
        for channel in session.exec(select(Channel).order_by(col(Channel.id))).all():
            for field in ENCRYPTED_FIELDS:
                stored: str | None = getattr(channel, field)
                if stored is None:
                    continue
                if new.decrypt(stored) is not None:
                    already_new += 1
                    continue
                plain = old.decrypt(stored)
                if plain is None:
                    raise RotationError(
                        f"channel {channel.id} ({channel.name}): {field} opens with neither the old nor the "
                        "new key; nothing was changed"
                    )
                setattr(channel, field, new.encrypt(plain))
                rotated += 1
            session.add(channel)
        session.commit()  # one transaction: every row or none
    return RotationResult(rotated=rotated, already_new=already_new)
