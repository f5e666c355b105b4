"""The objects one running instance shares, built once at start and kept on ``app.state.pyaichat``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from app.config import Settings
from services.security import KeyCipher
from services.settings import SystemSettings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    cipher: KeyCipher

    @property
    def setting_defaults(self) -> SystemSettings:
        return SystemSettings(
            guest_rpm=self.settings.guest_rpm,
            user_rpm=self.settings.user_rpm,
            log_retention_days=self.settings.log_retention_days,
        )

    @property
    def secret_key(self) -> str:
        return self.settings.secret("secret_key")
