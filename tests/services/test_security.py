from __future__ import annotations

from datetime import timedelta

import pytest

from services.errors import AuthenticationFailed
from services.security import KeyCipher, create_token, decode_token, hash_password, mask_key, verify_password


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


def test_passwords() -> None:
    hashed = hash_password("password-1")
    assert verify_password("password-1", hashed)
    assert not verify_password("password-2", hashed)
    assert not verify_password("x" * 100, hashed)
    assert not verify_password("password-1", None)


def test_token_kinds_do_not_mix() -> None:
    token = create_token(subject="1", kind="user", secret="k" * 32, lifetime=timedelta(minutes=5))
    assert decode_token(token, secret="k" * 32, kind="user") == "1"
    with pytest.raises(AuthenticationFailed):
        decode_token(token, secret="k" * 32, kind="admin")
    expired = create_token(subject="1", kind="user", secret="k" * 32, lifetime=timedelta(seconds=-1))
    with pytest.raises(AuthenticationFailed):
        decode_token(expired, secret="k" * 32, kind="user")
