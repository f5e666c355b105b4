"""The objects one running instance shares, built once at start and kept on ``app.state.pyaichat``."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from app.config import Settings
from services.channels import ChannelDirectory
from services.chat import ChatService
from services.ip_block import BlockList
from services.logs import LogWriter
from services.open_calls import OpenCalls
from services.rate_limit import RateLimiter
from services.retention import RetentionJob
from services.security import KeyCipher
from services.settings import SettingsStore, SystemSettings
from services.upstream import UpstreamClient, UpstreamTimeouts

log = logging.getLogger("pyaichat")
# at shutdown the queued call-log rows get this long to reach the database; the journal keeps the rest
LOG_FLUSH_SECONDS = 5.0


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    cipher: KeyCipher
    directory: ChannelDirectory
    http_client: UpstreamClient
    log_writer: LogWriter
    limiter: RateLimiter
    system_settings: SettingsStore
    block_list: BlockList
    chat: ChatService
    retention: RetentionJob
    calls: OpenCalls
    # listening sockets made by pyaichat itself (``app.main.dual_stack_listener``): uvicorn serves a
    # duplicate of each, so the port only stops taking connections once this copy is closed as well
    listeners: list[socket.socket] = field(default_factory=list, repr=False)
    _drain: asyncio.Task[int] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppState:
        cipher = KeyCipher(settings.secret("encryption_key"))
        timeouts = UpstreamTimeouts(
            connect=settings.upstream_connect_timeout,
            first_byte=settings.upstream_first_byte_timeout,
            idle=settings.upstream_idle_timeout,
        )
        directory = ChannelDirectory(engine, cipher)
        http_client = UpstreamClient(timeouts)
        log_writer = LogWriter(engine, settings.zone, journal_dir=settings.journal_dir)
        limiter = RateLimiter(settings.rate_limit_storage)
        defaults = SystemSettings(
            guest_rpm=settings.guest_rpm,
            user_rpm=settings.user_rpm,
            log_retention_days=settings.log_retention_days,
        )
        system_settings = SettingsStore(engine, defaults)
        block_list = BlockList(engine)
        calls = OpenCalls()
        chat = ChatService(
            directory=directory,
            client=http_client,
            log_writer=log_writer,
            timeouts=timeouts,
            limiter=limiter,
            settings=system_settings,
            block_list=block_list,
            calls=calls,
        )
        retention = RetentionJob(engine, lambda: system_settings.current().log_retention_days)
        return cls(
            settings=settings,
            engine=engine,
            cipher=cipher,
            directory=directory,
            http_client=http_client,
            log_writer=log_writer,
            limiter=limiter,
            system_settings=system_settings,
            block_list=block_list,
            chat=chat,
            retention=retention,
            calls=calls,
        )

    def shutdown_requested(self) -> None:
        """SIGTERM (or SIGINT) arrived: refuse new calls from now on, and give the open ones
        ``SHUTDOWN_GRACE_SECONDS`` before cutting them. Runs on the event loop; uvicorn meanwhile stops
        listening and waits for the open responses."""
        self.calls.draining = True
        for listener in self.listeners:
            listener.close()  # uvicorn closes its duplicate itself: then new connections are refused
        self.listeners.clear()
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(
                self.calls.drain(self.settings.shutdown_grace_seconds)
            )

    async def close(self) -> None:
        """The last step of a shutdown (NiceGUI's ``on_shutdown``): the calls end first (already, after
        a signal), so that every row is queued before the log is flushed."""
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self.calls.drain(0))
        await self._drain
        self.retention.stop()
        await self.http_client.aclose()
        await asyncio.to_thread(self.log_writer.close, LOG_FLUSH_SECONDS)
        self.block_list.close()
        self.engine.dispose()

    @property
    def setting_defaults(self) -> SystemSettings:
        return self.system_settings.defaults

    @property
    def secret_key(self) -> str:
        return self.settings.secret("secret_key")
