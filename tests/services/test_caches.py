"""The channel directory, settings store and block list: a change made through them shows at once,
even with a period that would otherwise keep the old values for an hour."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import ChannelCreate, ChannelUpdate
from services.channel_directory import ChannelDirectory
from services.errors import InvalidInput, NotFound
from services.ip_block import BlockList
from services.security import KeyCipher
from services.settings import SettingsStore, SystemSettings
from tests.helpers import migrated_engine

HOUR = 3600.0
LIMITS = SystemSettings(guest_rpm=10, user_rpm=20, log_retention_days=30)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(tmp_path / "caches.db")
    yield engine
    engine.dispose()


def test_channel_changes_through_the_directory_show_at_once(engine: Engine) -> None:
    directory = ChannelDirectory(engine, KeyCipher("test-encryption-key"), period=HOUR)
    assert directory.models() == []
    data = ChannelCreate(name="Main", base_url="http://127.0.0.1:9/v1", api_key="sk-1", model_id="m-1")
    with Session(engine) as session:
        channel = directory.create(session=session, data=data, actor=None)
    assert channel.id is not None
    assert [target.api_key for target in directory.candidates("m-1")] == ["sk-1"]
    with Session(engine) as session:
        directory.update(
            session=session, channel_id=channel.id, data=ChannelUpdate(model_id="m-2"), actor=None
        )
    assert not directory.has_model("m-1") and directory.has_model("m-2")
    with Session(engine) as session, pytest.raises(NotFound):
        directory.update(
            session=session, channel_id=channel.id + 1, data=ChannelUpdate(is_enabled=False), actor=None
        )
    assert directory.has_model("m-2"), "a refused change leaves the directory as it was"
    with Session(engine) as session:
        directory.update(
            session=session, channel_id=channel.id, data=ChannelUpdate(is_enabled=False), actor=None
        )
    assert directory.models() == []
    with Session(engine) as session:
        directory.update(
            session=session, channel_id=channel.id, data=ChannelUpdate(is_enabled=True), actor=None
        )
        assert directory.has_model("m-2")
        directory.delete(session=session, channel_id=channel.id, actor=None)
    assert directory.models() == []


def test_rules_added_and_removed_through_the_block_list_apply_at_once(engine: Engine) -> None:
    block_list = BlockList(engine, period=HOUR)
    try:
        assert block_list.match("203.0.113.7") is None
        with Session(engine) as session:
            rule = block_list.add(session=session, ip_address="203.0.113.0/24", reason="test", actor=None)
        assert block_list.match("203.0.113.7") == "203.0.113.0/24"
        with Session(engine) as session, pytest.raises(InvalidInput):
            block_list.add(session=session, ip_address="not an address", reason=None, actor=None)
        assert block_list.match("203.0.113.7") == "203.0.113.0/24"
        assert rule.id is not None
        with Session(engine) as session:
            block_list.remove(session=session, rule_id=rule.id, actor=None)
        assert block_list.match("203.0.113.7") is None
    finally:
        block_list.close()


async def test_a_waiter_for_a_block_wakes_on_the_change_not_on_a_timer(engine: Engine) -> None:
    """With an hour's period, only the change itself (made on another thread, as the admin's are) can wake
    the waiter: a change of another address leaves it waiting, the rule that covers it ends the wait."""
    block_list = BlockList(engine, period=HOUR)
    try:
        waiter = asyncio.create_task(block_list.until_blocked("198.51.100.23"))

        def add(address: str) -> None:
            with Session(engine) as session:
                block_list.add(session=session, ip_address=address, reason=None, actor=None)

        await asyncio.to_thread(add, "203.0.113.0/24")
        await asyncio.sleep(0)  # let the waiter look at the new rules (it would have returned now)
        assert not waiter.done()
        await asyncio.to_thread(add, "198.51.100.0/24")
        assert await waiter == "198.51.100.0/24"
        assert not block_list.refresher._listeners, "a waiter that has its answer stops listening"
        # already blocked: at once
        assert await block_list.until_blocked("198.51.100.99") == "198.51.100.0/24"
    finally:
        block_list.close()


def test_settings_updated_through_the_store_apply_at_once(engine: Engine) -> None:
    store = SettingsStore(engine, LIMITS, period=HOUR)
    assert store.current().guest_rpm == 10
    with Session(engine) as session:
        updated = store.update(session=session, changes={"guest_rpm": 3}, actor=None)
    assert updated.guest_rpm == 3 and store.current().guest_rpm == 3 and store.current().user_rpm == 20
    with Session(engine) as session, pytest.raises(InvalidInput):
        store.update(session=session, changes={"user_rpm": 0}, actor=None)
    assert store.current().user_rpm == 20


def test_a_change_is_loaded_by_the_thread_that_made_it(engine: Engine) -> None:
    """The admin pages and the API change things on worker threads; readers on the event loop then find
    the caches loaded and never query the database themselves."""
    directory = ChannelDirectory(engine, KeyCipher("test-encryption-key"), period=HOUR)
    block_list = BlockList(engine, period=HOUR)
    store = SettingsStore(engine, LIMITS, period=HOUR)
    try:
        for cache in (directory, block_list, store):
            cache.load()
        reader = threading.get_ident()
        reader_checkouts: list[int] = []

        def checkout(*_: object) -> None:
            if threading.get_ident() == reader:
                reader_checkouts.append(1)

        def change() -> None:
            with Session(engine) as session:
                data = ChannelCreate(
                    name="W", base_url="http://127.0.0.1:9/v1", api_key="sk-w", model_id="m-w"
                )
                directory.create(session=session, data=data, actor=None)
                block_list.add(session=session, ip_address="198.51.100.0/24", reason=None, actor=None)
                store.update(session=session, changes={"guest_rpm": 5}, actor=None)

        event.listen(engine, "checkout", checkout)
        worker = threading.Thread(target=change)
        worker.start()
        worker.join()
        assert directory.has_model("m-w") and block_list.match("198.51.100.9") == "198.51.100.0/24"
        assert store.current().guest_rpm == 5
        assert reader_checkouts == []
    finally:
        block_list.close()
