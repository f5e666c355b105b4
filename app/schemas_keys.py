"""Request and response bodies of personal API keys and the password change (``/api/keys``,
``/api/admin/keys``, ``/api/auth/password``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PasswordChange(BaseModel):
    old_password: str = Field(max_length=1024, description="the current password")
    new_password: str = Field(max_length=1024, description="8+ characters, at most 72 bytes in UTF-8")


class ApiKeyCreate(BaseModel):
    name: str = Field(max_length=1000, description="1-100 characters, e.g. the app that will use it")
    expires_at: datetime | None = Field(
        default=None, description="optional; in the future (a time without a zone is UTC)"
    )


class ApiKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="updated at most once a minute")


class ApiKeyCreated(BaseModel):
    id: int
    name: str
    key: str = Field(description="the key itself: shown only in this answer, stored only as a hash")
    prefix: str
    created_at: datetime
    expires_at: datetime | None


class AdminApiKey(ApiKeyPublic):
    user_id: int
    email: str | None = Field(description="the owner's e-mail (null once the user is deleted)")
    revoked_at: datetime | None


class AdminApiKeyPage(BaseModel):
    items: list[AdminApiKey]
    total: int
    page: int
    page_size: int
