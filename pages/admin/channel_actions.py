"""What the channel page asks of the server: a page of the table, save, bulk changes, resume, delete and
connectivity tests. Each blocking call opens its own session and is run off the event loop by the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from app.models import Channel, ChannelCreate, ChannelListItem, ChannelPublic, ChannelUpdate
from app.state import AppState
from pages.i18n import language
from pages.threads import off_loop
from services import channel_list, channels
from services.audit import Actor
from services.channel_test import ProbeResult, probe_channel
from services.errors import DomainError
from services.i18n import FALLBACK


@dataclass
class Tested:
    """A test run from this page: kept in the table (not a toast) until the page is left."""

    at: datetime
    result: ProbeResult | None = None  # None: running
    failure: str | None = None  # the channel could not be tested (deleted meanwhile)


@dataclass
class View:
    page: int = 1
    page_size: int = 20
    q: str = ""
    status: str = ""
    sort: str = "id"
    selected: set[int] = field(default_factory=set)
    tests: dict[int, Tested] = field(default_factory=dict)
    loads: int = 0  # loads started: only the latest one's answer is shown
    language: str = FALLBACK  # the visitor's, read when the page is built (loads run off the event loop)


class ChannelActions:
    """The channel page's server side, built once per app from its state."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def load(self, view: View) -> tuple[list[ChannelListItem], int]:
        state = self.state
        request = channel_list.channel_query(
            page=view.page, page_size=view.page_size, q=view.q, status=view.status or None, sort=view.sort
        )
        with Session(state.engine) as session:
            return channel_list.list_page(
                session=session,
                request=request,
                cipher=state.cipher,
                zone=state.settings.zone,
                language=view.language,
            )

    def save(
        self, data: dict[str, Any], channel_id: int | None, actor: Actor, language: str
    ) -> ChannelPublic:
        state = self.state
        with Session(state.engine) as session:
            if channel_id is None:
                row = state.directory.create(session=session, data=ChannelCreate(**data), actor=actor)
            else:
                row = state.directory.update(
                    session=session, channel_id=channel_id, data=ChannelUpdate(**data), actor=actor
                )
            return channels.to_public(row, state.cipher, language)

    def bulk(self, ids: list[int], action: str, actor: Actor) -> int:
        """Enable, disable or delete each channel; returns how many were changed (gone ones are skipped)."""
        state = self.state
        done = 0
        with Session(state.engine) as session:
            for channel_id in ids:
                try:
                    if action == "delete":
                        state.directory.delete(session=session, channel_id=channel_id, actor=actor)
                    else:
                        data = ChannelUpdate(is_enabled=action == "enable")
                        state.directory.update(session=session, channel_id=channel_id, data=data, actor=actor)
                except DomainError:
                    continue
                done += 1
        return done

    def fetch(self, channel_id: int) -> Channel:
        with Session(self.state.engine) as session:
            return channels.get_channel(session=session, channel_id=channel_id)

    def resume_now(self, channel_id: int, actor: Actor) -> None:
        with Session(self.state.engine) as session:
            self.state.directory.resume(session=session, channel_id=channel_id, actor=actor)

    def remove(self, channel_id: int, actor: Actor) -> None:
        with Session(self.state.engine) as session:
            self.state.directory.delete(session=session, channel_id=channel_id, actor=actor)

    async def run_test(self, channel_id: int, actor: Actor) -> Tested:
        state = self.state
        tested = Tested(at=datetime.now(UTC))
        try:
            row = await off_loop(self.fetch, channel_id)
        except DomainError as exc:  # deleted meanwhile (in another tab or by another admin)
            tested.failure = exc.text(language())
            return tested
        tested.result = await probe_channel(
            channel=row,
            cipher=state.cipher,
            client=state.http_client,
            wait_seconds=state.settings.upstream_first_byte_timeout,
        )
        if tested.result.ok and row.auto_paused:  # a passing test resumes an auto-paused channel
            await off_loop(state.health.resumed, channel_id, tested.result.latency_ms, actor)
        return tested
