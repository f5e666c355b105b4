"""The objects one running instance shares, built once at start and kept on ``app.state.pyaichat``."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from app.config import Settings
from app.models import Channel
from services.announce import ChangeBus
from services.channel_directory import ChannelDirectory
from services.channel_health import ChannelHealth, RetestResult
from services.channel_test import probe_channel
from services.chat import ChatService
from services.identity import IdentityCache
from services.ip_block import BlockList
from services.limit_backend import open_limit_backend
from services.logs import LogWriter
from services.metrics import Metrics
from services.model_settings import ModelSettingsStore
from services.open_calls import OpenCalls
from services.rate_limit import RateLimiter
from services.refresh import Reloader
from services.retention import RetentionJob
from services.security import KeyCipher, SessionCipher
from services.settings import SettingsStore, SystemSettings
from services.stats_callers import CallerSums
from services.stats_counters import DailyCounters
from services.throttle import Throttle
from services.upstream import UpstreamClient, UpstreamTimeouts
from services.users import UserAdmin

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
    throttle: Throttle
    session_cipher: SessionCipher
    system_settings: SettingsStore
    block_list: BlockList
    identity: IdentityCache
    chat: ChatService
    retention: RetentionJob
    reloader: Reloader
    changes: ChangeBus
    calls: OpenCalls
    health: ChannelHealth
    users: UserAdmin
    counters: DailyCounters
    metrics: Metrics
    model_settings: ModelSettingsStore
    caller_sums: CallerSums  # the dashboard's kept sums of closed days (services/stats_callers.py)
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
        period = settings.cache_refresh_seconds
        directory = ChannelDirectory(engine, cipher, period)
        http_client = UpstreamClient(
            timeouts, max_answer_bytes=settings.max_upstream_body_bytes, ca_bundle=settings.upstream_ca_bundle
        )
        metrics = Metrics()  # the instance's own registry (docs/operations.md#metrics)
        log_writer = LogWriter(
            engine, settings.zone, journal_dir=settings.journal_dir, on_record=metrics.count_call
        )
        limit_backend = open_limit_backend(settings.rate_limit_storage)  # a Redis watchdog starts here
        limiter = RateLimiter(limit_backend)
        throttle = Throttle.for_backend(limit_backend)
        session_cipher = SessionCipher(settings.secret("secret_key"))
        defaults = SystemSettings(
            guest_rpm=settings.guest_rpm,
            user_rpm=settings.user_rpm,
            log_retention_days=settings.log_retention_days,
            register_per_ip_per_hour=settings.register_per_ip_per_hour,
            auto_pause_after=settings.auto_pause_after,
        )
        system_settings = SettingsStore(engine, defaults, period)
        counters = DailyCounters(engine, settings.zone, on_add=metrics.count_event).start()
        block_list = BlockList(engine, period, counters)
        identity = IdentityCache(engine, settings.secret("secret_key"), throttle, period)
        calls = OpenCalls()
        metrics.watch(
            journal_depth=lambda: log_writer.waiting,
            journal_lag=log_writer.write_lag,
            open_calls=calls.__len__,
        )
        model_settings = ModelSettingsStore(engine, period)
        health = ChannelHealth(
            engine,
            directory,
            lambda: system_settings.current().auto_pause_after,
            retest_seconds=settings.channel_retest_seconds,
        )
        chat = ChatService(
            directory=directory,
            client=http_client,
            log_writer=log_writer,
            timeouts=timeouts,
            limiter=limiter,
            settings=system_settings,
            block_list=block_list,
            calls=calls,
            health=health,
            counters=counters,
            model_settings=model_settings,
        )
        retention = RetentionJob(engine, lambda: system_settings.current().log_retention_days)
        reloader = Reloader(
            [
                system_settings.refresher,
                block_list.refresher,
                directory.refresher,
                identity.refresher,
                model_settings.refresher,
            ]
        )

        def changed_elsewhere(name: str) -> None:
            cache = reloader.by_name(name)
            if cache is not None:  # a name from a newer version of the app: nothing here to reload
                cache.outdated()

        changes = ChangeBus(
            engine=engine,
            storage_uri=settings.rate_limit_storage,
            on_change=changed_elsewhere,
            on_reconnect=reloader.ask,
            on_unconfirmed=metrics.changes_unconfirmed.inc,
        )
        metrics.peer_instances.set_function(lambda: len(changes.peers.live()))
        reloader.announce = changes.announce
        return cls(
            settings=settings,
            engine=engine,
            cipher=cipher,
            directory=directory,
            http_client=http_client,
            log_writer=log_writer,
            limiter=limiter,
            throttle=throttle,
            session_cipher=session_cipher,
            system_settings=system_settings,
            block_list=block_list,
            identity=identity,
            chat=chat,
            retention=retention,
            reloader=reloader,
            changes=changes,
            calls=calls,
            health=health,
            users=UserAdmin(engine, identity),
            counters=counters,
            metrics=metrics,
            model_settings=model_settings,
            caller_sums=CallerSums(),
        )

    async def retest_channel(self, channel: Channel) -> RetestResult:
        """A paused channel's background re-test: the admin's test button, both calls."""
        wait = self.settings.upstream_first_byte_timeout
        result = await probe_channel(
            channel=channel, cipher=self.cipher, client=self.http_client, wait_seconds=wait
        )
        return RetestResult(ok=result.ok, error=result.error, latency_ms=result.latency_ms)

    def start(self) -> None:
        """After the first loads: keep the caches fresh and listen for other instances' changes (on the
        running event loop)."""
        loop = asyncio.get_running_loop()
        # calls already running end when their user is deleted or disabled, or their token or key revoked
        self.identity.watch(
            self.calls.user_ids, lambda verdicts: loop.call_soon_threadsafe(self.calls.revoke, verdicts)
        )
        self.reloader.start()
        self.changes.start()
        self.health.start()
        self.health.start_retests(self.retest_channel)

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
        try:
            await self._drain
            # its last flush stores what the calls reported (a channel it pauses is still announced)
            await asyncio.to_thread(self.health.stop)
            await self.changes.stop()
            await asyncio.to_thread(self.reloader.stop)  # thread joins: off the event loop
            await asyncio.to_thread(self.identity.write_notes)  # last-used times noted since the last reload
            self.retention.stop()
            await self.http_client.aclose()
        finally:  # whatever failed before, the rows are written out
            await asyncio.to_thread(self.log_writer.close, LOG_FLUSH_SECONDS)
            await asyncio.to_thread(self.block_list.close)
            await asyncio.to_thread(self.counters.close)
            await asyncio.to_thread(self.limiter.backend.close)
            self.engine.dispose()

    @property
    def setting_defaults(self) -> SystemSettings:
        return self.system_settings.defaults

    @property
    def secret_key(self) -> str:
        return self.settings.secret("secret_key")
