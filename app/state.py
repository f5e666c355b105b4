"""The objects one running instance shares, built once at start and kept on ``app.state.pyaichat``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from app.config import Settings
from services.channels import ChannelDirectory
from services.chat import ChatService
from services.logs import LogWriter
from services.security import KeyCipher
from services.settings import SystemSettings
from services.upstream import UpstreamTimeouts, make_http_client


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    cipher: KeyCipher
    directory: ChannelDirectory
    http_client: httpx.AsyncClient
    log_writer: LogWriter
    chat: ChatService

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppState:
        cipher = KeyCipher(settings.secret("encryption_key"))
        timeouts = UpstreamTimeouts(
            connect=settings.upstream_connect_timeout,
            first_byte=settings.upstream_first_byte_timeout,
            idle=settings.upstream_idle_timeout,
        )
        directory = ChannelDirectory(engine, cipher)
        http_client = make_http_client(timeouts)
        log_writer = LogWriter(engine)
        chat = ChatService(directory=directory, client=http_client, log_writer=log_writer, timeouts=timeouts)
        return cls(settings, engine, cipher, directory, http_client, log_writer, chat)

    async def close(self) -> None:
        await self.http_client.aclose()
        self.log_writer.close()
        self.engine.dispose()

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
