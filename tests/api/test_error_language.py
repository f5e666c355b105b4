"""API error messages follow the request's Accept-Language (zh-CN without one, or for a language we do not
have); the error's type and status never change with the language."""

from __future__ import annotations

import httpx
import pytest

from services import errors
from services.i18n import catalogue

EN = {"Accept-Language": "en-US,en;q=0.9"}


def _error(response: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "邮箱或密码错误"),
        ({"Accept-Language": "fr-FR"}, "邮箱或密码错误"),
        ({"Accept-Language": "zh-TW,en;q=0.5"}, "邮箱或密码错误"),
        (EN, "Wrong email or password"),
    ],
)
def test_a_failed_login_speaks_the_request_language(
    client: httpx.Client, unique_email: str, headers: dict[str, str], message: str
) -> None:
    response = client.post(
        "/api/auth/login", json={"email": unique_email, "password": "not-the-password"}, headers=headers
    )
    assert response.status_code == 401
    assert _error(response) == {"type": "unauthorized", "message": message}


def test_domain_errors_with_fields_in_english(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    response = client.get("/api/admin/logs", params={"start": "garbage"}, headers={**admin_headers, **EN})
    assert response.status_code == 422 and _error(response)["type"] == "validation_error"
    assert _error(response)["message"].startswith("Not a valid time: garbage (for example ")
    chinese = client.get("/api/admin/logs", params={"start": "garbage"}, headers=admin_headers)
    assert chinese.status_code == 422 and _error(chinese)["message"].startswith("时间格式不正确：garbage")


def test_a_named_field_is_translated_too(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    body = {"ip_address": "10.9.8.7", "reason": "bad\x07"}
    english = client.post("/api/admin/blocked-ips", json=body, headers={**admin_headers, **EN})
    assert english.status_code == 422
    assert _error(english)["message"] == "The reason must not contain control characters"
    response = client.post(
        "/api/auth/login", json={"email": "a\x00@example.com", "password": "whatever1"}, headers=EN
    )
    assert response.status_code == 422
    assert "Email must not contain control characters" in _error(response)["message"]
    chinese = client.post("/api/auth/login", json={"email": "a\x00@example.com", "password": "whatever1"})
    assert "邮箱不能包含控制字符" in _error(chinese)["message"]


def test_framework_errors_in_english(client: httpx.Client) -> None:
    missing = client.get("/api/no-such-route", headers=EN)
    assert missing.status_code == 404
    assert _error(missing) == {"type": "not_found", "message": "No such endpoint"}
    assert _error(client.get("/api/no-such-route"))["message"] == "接口不存在"
    bad_json = client.post(
        "/api/auth/login", content=b"{not json", headers={**EN, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert _error(bad_json)["message"] == "The request body is not valid JSON"


def test_missing_credentials_in_english(client: httpx.Client) -> None:
    response = client.get("/api/admin/users", headers=EN)
    assert response.status_code == 401
    assert _error(response) == {"type": "unauthorized", "message": "Admin sign-in required"}


def test_every_error_class_has_its_message_in_both_languages() -> None:
    classes = [errors.DomainError]
    while classes:
        kind = classes.pop()
        classes += kind.__subclasses__()
        if kind is errors.InputRule:
            continue
        texts = catalogue()[kind.default_key]
        assert texts["zh-CN"] and texts["en"], kind
        error = kind()
        assert error.message == texts["zh-CN"]
        assert error.body("en")["error"] == {**error.body()["error"], "message": texts["en"]}


def test_a_fixed_text_stays_as_written() -> None:
    error = errors.InvalidInput("not a key: shown as it is")
    assert error.key is None and error.text("en") == error.message == "not a key: shown as it is"
