"""ChatService's one failover loop, for both kinds of call: which channel serves, which 503, and the one
log row each call leaves (``all_busy`` when no channel had a free slot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from app.models import Channel, ChannelCreate, ChatLog
from services.call_log import Caller
from services.channel_directory import ChannelDirectory
from services.chat import ChatService
from services.errors import ModelNotFound, UpstreamUnavailable
from services.ip_block import BlockList
from services.logs import LogWriter
from services.rate_limit import RateLimiter
from services.refresh import Reloader
from services.security import KeyCipher
from services.settings import SettingsStore, SystemSettings
from services.upstream import UpstreamClient, UpstreamTimeouts
from tests.chat_helpers import unique_model
from tests.helpers import migrated_engine, wait_until_async
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
MODES = ["stream", "complete"]
MAX_ANSWER_BYTES = 1024 * 1024  # huge-64: more than socket buffers hold, so a cut-off shows upstream


class Harness:
    def __init__(
        self, tmp_path: Path, upstream: UpstreamServer, timeouts: UpstreamTimeouts | None = None
    ) -> None:
        timeouts = timeouts or UpstreamTimeouts(connect=2, first_byte=0.5, idle=0.5)
        self.upstream = upstream
        self.engine = migrated_engine(tmp_path / "chat.db")
        self.directory = ChannelDirectory(self.engine, KeyCipher("test-encryption-key"))
        self.writer = LogWriter(self.engine, ZoneInfo("UTC"), journal_dir=tmp_path / "journal").start()
        self.block_list = BlockList(self.engine)
        self.client = UpstreamClient(timeouts, max_answer_bytes=MAX_ANSWER_BYTES)
        limits = SystemSettings(guest_rpm=1000, user_rpm=1000, log_retention_days=30)
        settings = SettingsStore(self.engine, limits)
        # the caches kept fresh by a reloader thread, as the app's are: a decision never waits for a
        # reload of its own (which a busy machine once took longer than the 1.5 s bound to finish)
        self.reloader = Reloader([self.directory.refresher, self.block_list.refresher, settings.refresher])
        self.reloader.start()
        self.service = ChatService(
            directory=self.directory,
            client=self.client,
            log_writer=self.writer,
            timeouts=timeouts,
            limiter=RateLimiter("memory://"),
            settings=settings,
            block_list=self.block_list,
        )

    def add(self, scenario: str, model: str, rpm_limit: int = 1000) -> int:
        data = ChannelCreate(
            name=scenario,
            base_url=self.upstream.base_url(scenario),
            api_key="sk-test-1",
            model_id=model,
            rpm_limit=rpm_limit,
        )
        with Session(self.engine) as session:
            channel = self.directory.create(session=session, data=data, actor=None)
        assert channel.id is not None
        return channel.id

    async def call(self, mode: str, model: str) -> str:
        """The answer's text; raises what the service raises."""
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        caller = Caller(ip="192.0.2.1")
        if mode == "complete":
            answer = await self.service.complete(body=body, caller=caller)
            return answer["choices"][0]["message"]["content"]
        stream = await self.service.open_stream(body=body, caller=caller)
        try:
            return "".join([piece.content async for piece in stream.pieces()])
        finally:
            await stream.aclose()

    def rows(self, model: str) -> list[ChatLog]:
        assert self.writer.flush()
        with Session(self.engine) as session:
            return list(session.exec(select(ChatLog).where(ChatLog.model_id == model)).all())

    async def close(self) -> None:
        self.reloader.stop()
        await self.client.aclose()
        self.writer.close()
        self.block_list.close()
        self.engine.dispose()


@pytest.fixture
async def harness(tmp_path: Path, upstream: UpstreamServer) -> AsyncIterator[Harness]:
    made = Harness(tmp_path, upstream)
    yield made
    await made.close()


@pytest.mark.parametrize("mode", MODES)
async def test_a_failing_channel_is_skipped_for_the_next(harness: Harness, mode: str) -> None:
    harness.add("error500", "m")
    good = harness.add("ok", "m")
    assert await harness.call(mode, "m") == ANSWER
    [row] = harness.rows("m")
    assert (row.status, row.channel_id) == ("ok", good)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("scenarios", "status"), [(["hang", "hang"], "timeout"), (["hang", "error500"], "upstream_error")]
)
async def test_no_channel_serving_is_one_row_and_a_503(
    harness: Harness, mode: str, scenarios: list[str], status: str
) -> None:
    for scenario in scenarios:
        harness.add(scenario, "m")
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.retry_after is None
    assert [row.status for row in harness.rows("m")] == [status]


@pytest.mark.parametrize("mode", MODES)
async def test_no_free_slot_is_a_busy_503_with_the_wait_and_an_all_busy_row(
    harness: Harness, mode: str
) -> None:
    harness.add("ok", "m", rpm_limit=1)
    harness.add("ok", "m", rpm_limit=1)
    await harness.call(mode, "m")
    await harness.call(mode, "m")
    asked = len(harness.upstream.requests_for("ok"))
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.retry_after is not None and 1 <= raised.value.retry_after <= 60
    assert raised.value.reason == "all_busy" and "繁忙" in raised.value.message
    assert len(harness.upstream.requests_for("ok")) == asked  # no upstream was asked
    rows = harness.rows("m")
    assert [(row.status, row.error) for row in rows] == [
        ("ok", None),
        ("ok", None),
        ("upstream_error", "all_busy"),
    ]
    assert (rows[2].channel_id, rows[2].prompt_tokens, rows[2].completion_tokens) == (None, 0, 0)


@pytest.mark.parametrize("mode", MODES)
async def test_a_model_whose_channels_are_all_auto_paused_is_busy_not_unknown(
    harness: Harness, mode: str
) -> None:
    channel_id = harness.add("ok", "m")
    with Session(harness.engine) as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        channel.auto_paused = True
        session.add(channel)
        session.commit()
    harness.directory.refresher.changed()
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.reason == "all_busy" and raised.value.retry_after is None
    assert [(row.status, row.error) for row in harness.rows("m")] == [("upstream_error", "all_busy")]
    assert "m" not in [name for name, _ in harness.service.model_names()]
    with pytest.raises(ModelNotFound):  # a model no enabled channel serves stays unknown
        await harness.call(mode, "other")


@pytest.mark.parametrize("mode", MODES)
async def test_a_caller_leaving_before_the_answer_is_one_client_aborted_row(
    harness: Harness, mode: str
) -> None:
    harness.add("hang", "m")
    asked_before = len(harness.upstream.requests_for("hang"))
    task = asyncio.create_task(harness.call(mode, "m"))
    await wait_until_async(
        lambda: len(harness.upstream.requests_for("hang")) > asked_before, what="the request upstream"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [row.status for row in harness.rows("m")] == ["client_aborted"]


async def test_a_stream_closed_before_its_pieces_are_read_is_closed_upstream_and_logged(
    harness: Harness,
) -> None:
    harness.add("stall", "stalled")
    body = {"model": "stalled", "messages": [{"role": "user", "content": "hi"}]}
    stream = await harness.service.open_stream(body=body, caller=Caller(ip="192.0.2.1"))
    stream.pieces()  # handed to a relay that never ran (its client left first)
    await stream.aclose()
    await stream.aclose()  # closing twice changes nothing
    await wait_until_async(lambda: harness.upstream.ends_of("stalled"), what="the upstream stream's end")
    assert [end.cancelled for end in harness.upstream.ends_of("stalled")] == [True]
    assert [row.status for row in harness.rows("stalled")] == ["client_aborted"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_fault_of_ours_is_an_upstream_error_row_not_a_client_abort(
    harness: Harness, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.add("ok", "m")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.client, "post_json", broken)
    with pytest.raises(RuntimeError):
        await harness.call(mode, "m")
    assert [row.status for row in harness.rows("m")] == ["upstream_error"]


async def _upstream_ends(harness: Harness, model: str, scenario: str) -> list[bool]:
    """Whether each of ``model``'s answers from ``scenario`` was cut off by the gateway (cancelled)."""

    def ends() -> list[bool]:
        return [end.cancelled for end in harness.upstream.ends_of(model) if end.scenario == scenario]

    await wait_until_async(ends, what=f"the end of the upstream's {scenario} answer")
    return ends()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", ["huge", "hugelen"])
async def test_an_answer_over_the_cap_skips_the_channel_and_is_cut_off(
    harness: Harness, mode: str, scenario: str
) -> None:
    """A whole answer (counted, or refused from its Content-Length) or a stream's first line over
    ``MAX_UPSTREAM_BODY_BYTES``: the channel fails as ``bad_stream`` and its connection is closed."""
    model = unique_model(scenario)
    harness.add(f"{scenario}-64", model)
    good = harness.add("ok", model)
    assert await harness.call(mode, model) == ANSWER
    [row] = harness.rows(model)
    assert (row.status, row.channel_id) == ("ok", good)
    assert await _upstream_ends(harness, model, scenario) == [True]


async def test_a_line_over_the_cap_mid_stream_ends_it_with_the_error_event(harness: Harness) -> None:
    model = unique_model("hugelate")
    harness.add("hugelate-64", model)
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    stream = await harness.service.open_stream(body=body, caller=Caller(ip="192.0.2.1"))
    pieces = [piece async for piece in stream.pieces()]
    assert "".join(piece.content for piece in pieces) == "first"
    assert isinstance(pieces[-1].error, UpstreamUnavailable) and not pieces[-1].done
    assert [row.status for row in harness.rows(model)] == ["upstream_error"]
    assert await _upstream_ends(harness, model, "hugelate") == [True]


async def test_a_drip_without_a_stream_is_a_timeout_of_the_whole_wait(harness: Harness) -> None:
    """One byte every 0.1 s never leaves a read idle for the 0.5 s idle timeout, but the whole wait for
    the answer is bounded by it."""
    model = unique_model("drip")
    harness.add("drip-100", model)
    with pytest.raises(UpstreamUnavailable):
        await harness.call("complete", model)
    assert [row.status for row in harness.rows(model)] == ["timeout"]
    assert await _upstream_ends(harness, model, "drip") == [True]


async def test_a_line_dripping_mid_stream_is_a_timeout(harness: Harness) -> None:
    model = unique_model("drip")
    harness.add("drip-100", model)
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    stream = await harness.service.open_stream(body=body, caller=Caller(ip="192.0.2.1"))
    pieces = [piece async for piece in stream.pieces()]
    assert "".join(p.content for p in pieces) == "first" and isinstance(pieces[-1].error, UpstreamUnavailable)
    assert [row.status for row in harness.rows(model)] == ["timeout"]
    assert await _upstream_ends(harness, model, "drip") == [True]
