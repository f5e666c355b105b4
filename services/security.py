"""Password hashing (bcrypt via passlib), JWTs (HS256, pinned), encryption of API keys at rest, and the
sealing of tokens kept in browser sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jose import jwt
from jose.exceptions import JOSEError
from passlib.context import CryptContext

from services.errors import AuthenticationFailed
from services.i18n import FALLBACK, translate

JWT_ALGORITHM = "HS256"
BCRYPT_MAX_BYTES = 72
TokenKind = Literal["user", "admin"]

# every password hash and check goes through this context (the page tests swap in a cheaper one)
password_context = CryptContext(schemes=["bcrypt"], deprecated="auto")
# Compared against when the account does not exist, so an unknown email costs as much as a wrong password:
# the hash of a random string nobody kept, at the cost factor new hashes get (checked by a test). A
# literal, as hashing it at import added 0.3 s to every start.
DUMMY_HASH = "$2b$12$nIah5S05bUw/DzZ1etbvo.2Vh3wKu7MUtVzSPbvsn2JhdRGrtNu1e"


def hash_password(password: str) -> str:
    """bcrypt hash of ``password``; callers have already checked the 8-char / 72-byte rules."""
    return password_context.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; runs a full bcrypt check even without a stored hash."""
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        return False
    try:
        matched = password_context.verify(password, password_hash or DUMMY_HASH)
    except (ValueError, TypeError):
        return False
    return matched and password_hash is not None


def password_fingerprint(password_hash: str, *, secret: str) -> str:
    """A short keyed digest of the account's password hash, carried in its tokens as ``pwd``: a new
    password (a new hash) no longer matches, which revokes every token issued before. Keyed with
    ``SECRET_KEY`` so the readable token says nothing about the hash."""
    digest = hmac.new(secret.encode(), b"pyaichat-password-v1:" + password_hash.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:16]).decode().rstrip("=")


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    password_fingerprint: str
    version: int = 0  # the account's token_version when issued (absent in older tokens: 0)


def create_token(
    *,
    subject: str,
    kind: TokenKind,
    secret: str,
    lifetime: timedelta,
    password_fingerprint: str,
    version: int = 0,
) -> str:
    """``version``: the account's ``token_version``; raising it refuses every token issued before."""
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "kind": kind,
        "pwd": password_fingerprint,
        "ver": version,
        "iat": int(now.timestamp()),
        "exp": now + lifetime,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_token(token: str, *, secret: str, kind: TokenKind) -> TokenClaims:
    """The claims of a valid, unexpired token of ``kind``; anything else raises AuthenticationFailed.
    Whether the password fingerprint still matches is the caller's check (it needs the account)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require_exp": True, "require_sub": True, "require_iat": True},
        )
    except JOSEError:
        raise AuthenticationFailed("errors.token_invalid") from None
    except (ValueError, TypeError, AttributeError):  # malformed segments that jose does not wrap
        raise AuthenticationFailed("errors.token_invalid") from None
    if claims.get("kind") != kind or not isinstance(claims.get("sub"), str):
        raise AuthenticationFailed("errors.token_kind")
    fingerprint = claims.get("pwd")
    if not isinstance(fingerprint, str):  # issued before tokens were bound to the password
        raise AuthenticationFailed("errors.token_revoked")
    version = claims.get("ver", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise AuthenticationFailed("errors.token_invalid")
    return TokenClaims(subject=claims["sub"], password_fingerprint=fingerprint, version=version)


def _fernet(secret: str, salt: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"fernet-v1").derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class KeyCipher:
    """Encrypts channel API keys with a Fernet key derived (HKDF-SHA256) from ``ENCRYPTION_KEY``."""

    def __init__(self, encryption_key: str) -> None:
        self._fernet = _fernet(encryption_key, b"pyaichat-channel-keys")

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The plain key, or None when it was encrypted with another ``ENCRYPTION_KEY``."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None


class SessionCipher:
    """Seals the tokens that the pages keep in NiceGUI's browser-session storage (files under
    ``.nicegui``, or Redis) with a Fernet key derived (HKDF-SHA256) from ``SECRET_KEY``: whoever reads
    that storage gets no usable token, and a restart with the same ``SECRET_KEY`` still opens them."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = _fernet(secret_key, b"pyaichat-browser-sessions")

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def unseal(self, sealed: object) -> str | None:
        """The token, or None for anything not sealed by this key (a plain token of an older version)."""
        if not isinstance(sealed, str):
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None


def mask_key(plain: str | None, language: str = FALLBACK) -> str:
    """A display form that shows a few characters at each end (``sk-a…9xyz``); a key that cannot be
    decrypted says so in ``language``."""
    if not plain:
        return translate("channel_test.key_masked_unreadable", language)
    if len(plain) <= 8:
        return "•" * len(plain)
    return f"{plain[:4]}…{plain[-4:]}"
