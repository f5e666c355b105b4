from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jose import jwt

from services.errors import AuthenticationFailed
from services.security import (
    DUMMY_HASH,
    KeyCipher,
    SessionCipher,
    TokenClaims,
    create_token,
    decode_token,
    hash_password,
    mask_key,
    password_fingerprint,
    verify_password,
)


def test_key_cipher_round_trip_and_wrong_key() -> None:
    cipher = KeyCipher("one key")
    token = cipher.encrypt("sk-live-1234567890")
    assert "sk-live" not in token
    assert cipher.decrypt(token) == "sk-live-1234567890"
    assert KeyCipher("another key").decrypt(token) is None
    assert cipher.decrypt("garbage") is None


def test_mask_key() -> None:
    assert mask_key("sk-abcdef123456789xyz") == "sk-a…9xyz"
    assert "1234" not in mask_key("12345678")
    assert mask_key(None) == "（无法解密）"
    assert mask_key(None, "en") == mask_key("", "en") == "(cannot be decrypted)"


def test_passwords() -> None:
    hashed = hash_password("password-1")
    assert verify_password("password-1", hashed)
    assert not verify_password("password-2", hashed)
    assert not verify_password("x" * 100, hashed)
    assert not verify_password("password-1", None)


def test_an_unknown_account_costs_what_a_known_one_does() -> None:
    """The stand-in hash has the cost factor (and scheme) that new hashes get."""
    assert DUMMY_HASH.rsplit("$", 1)[0] == hash_password("password-1").rsplit("$", 1)[0]
    assert not verify_password("password-1", DUMMY_HASH)


def test_token_kinds_do_not_mix() -> None:
    token = create_token(
        subject="1", kind="user", secret="k" * 32, lifetime=timedelta(minutes=5), password_fingerprint="fp"
    )
    assert decode_token(token, secret="k" * 32, kind="user") == TokenClaims("1", "fp")
    with pytest.raises(AuthenticationFailed):
        decode_token(token, secret="k" * 32, kind="admin")
    expired = create_token(
        subject="1", kind="user", secret="k" * 32, lifetime=timedelta(seconds=-1), password_fingerprint="fp"
    )
    with pytest.raises(AuthenticationFailed):
        decode_token(expired, secret="k" * 32, kind="user")


def test_a_token_without_a_password_fingerprint_is_refused() -> None:
    """Tokens of the version before the fingerprint cannot be revoked by a new password: they are refused."""
    now = datetime.now(UTC)
    claims = {"sub": "1", "kind": "user", "iat": int(now.timestamp()), "exp": now + timedelta(minutes=5)}
    with pytest.raises(AuthenticationFailed):
        decode_token(jwt.encode(claims, "k" * 32, algorithm="HS256"), secret="k" * 32, kind="user")


def test_password_fingerprint_follows_the_hash_and_the_key() -> None:
    first, second = hash_password("password-1"), hash_password("password-1")  # two salts
    assert password_fingerprint(first, secret="a" * 32) == password_fingerprint(first, secret="a" * 32)
    assert password_fingerprint(first, secret="a" * 32) != password_fingerprint(second, secret="a" * 32)
    assert password_fingerprint(first, secret="a" * 32) != password_fingerprint(first, secret="b" * 32)
    assert first not in password_fingerprint(first, secret="a" * 32)


def test_session_cipher_seals_and_refuses_plain_or_foreign_values() -> None:
    cipher = SessionCipher("k" * 32)
    sealed = cipher.seal("eyJhbGciOiJIUzI1NiJ9.payload.signature")
    assert "eyJ" not in sealed and "payload" not in sealed
    assert cipher.unseal(sealed) == "eyJhbGciOiJIUzI1NiJ9.payload.signature"
    assert SessionCipher("j" * 32).unseal(sealed) is None  # another SECRET_KEY
    assert cipher.unseal("eyJhbGciOiJIUzI1NiJ9.payload.signature") is None  # a plain token of before
    assert cipher.unseal(None) is None and cipher.unseal(42) is None
