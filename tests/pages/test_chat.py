"""The chat page with NiceGUI's simulated user, against the loopback upstream."""

from __future__ import annotations

import asyncio
import weakref

from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_interaction import UserInteraction

from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state, set_limits
from tests.upstream_server import ANSWER_WORDS, CODE_ANSWER, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)


async def send(user: User, text: str) -> None:
    user.find(marker="message-input").type(text)
    user.find(marker="send").click()


async def test_guest_chat_with_reasoning_model(user: User, add_model) -> None:
    model = add_model("reasoning_content", name="DeepSeek R1")
    await user.open("/")
    await user.should_see("有什么可以帮你？")
    assert user.find(marker="model-select").elements.pop().value == model
    await send(user, "你好")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await user.should_see("Let me think about it.")
    await user.should_see(marker="thinking")
    thinking = user.find(marker="thinking").elements.pop()
    assert isinstance(thinking, ui.expansion)
    assert thinking.text.startswith("已思考") and thinking.value is False, "collapsed once the answer started"
    await user.should_see("你好", marker="user-message")
    await user.should_see("登录", marker="login")


async def test_plain_model_has_no_thinking_panel(user: User, add_model) -> None:
    add_model("ok")
    await user.open("/")
    await send(user, "hi")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await user.should_not_see(marker="thinking")


async def test_conversation_is_sent_each_turn_and_cleared_by_refresh(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    add_model("nousage", model="history-model")
    await user.open("/")
    await send(user, "first question")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await send(user, "second question")
    await user.should_see("second question")

    def sent() -> list:
        return [r for r in upstream.requests_for("nousage") if r.body.get("model") == "history-model"]

    await wait_until_async(lambda: len(sent()) == 2, what="the second request upstream")
    assert [m["content"] for m in sent()[-1].body["messages"]] == [
        "first question",
        ANSWER,
        "second question",
    ]
    await user.open("/")  # a refresh starts empty: nothing is stored server side
    await user.should_not_see("first question")
    await user.should_see("有什么可以帮你？")


async def test_new_chat_clears_the_conversation(user: User, add_model) -> None:
    add_model("ok")
    await user.open("/")
    await send(user, "remember me")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    user.find(marker="new-chat").click()
    await user.should_not_see("remember me")
    await user.should_see("有什么可以帮你？")


async def test_html_in_answers_reaches_the_browser_sanitised(user: User, add_model) -> None:
    add_model("html")
    await user.open("/")
    await send(user, "x")
    await user.should_see("done.", retries=SEE_RETRIES)
    answer = user.find(marker="answer").elements.pop()
    markdown = [el for el in answer.descendants() if isinstance(el, ui.markdown)]
    assert markdown, "the answer is Markdown"
    for element in markdown:
        html = element.props["innerHTML"]
        assert "<img" not in html and "<script" not in html and "onerror" not in html, html
        assert element.props.get("sanitize") is False, "sanitised on the server, set as it is"


async def test_stop_cancels_the_upstream_request(user: User, add_model, upstream: UpstreamServer) -> None:
    add_model("open-200", model="slow-model")  # no end of its own: it ends only when cancelled
    before = len(upstream.ends_of("slow-model"))  # the worker's upstream serves other files' tests too
    await user.open("/")
    await send(user, "long answer please")
    await user.should_see("w1", retries=SEE_RETRIES)
    user.find(marker="send").click()  # the send button is the stop button while answering
    await user.should_see("已停止生成", retries=SEE_RETRIES)
    await user.should_see("w1")
    await wait_until_async(
        lambda: upstream.ends_of("slow-model")[before:], what="the end of the upstream request"
    )
    assert [end.cancelled for end in upstream.ends_of("slow-model")[before:]] == [True]


async def test_rate_limit_dialog_counts_down_and_keeps_the_text(user: User, add_model) -> None:
    add_model("ok")
    set_limits(guest_rpm=1)
    await user.open("/")
    await send(user, "one")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await send(user, "two is kept")
    await user.should_see("您超过当前使用限制，请稍后再试", retries=SEE_RETRIES)
    await user.should_see(marker="countdown")
    countdown = user.find(marker="countdown").elements.pop().text
    assert "秒后可以重试" in countdown
    assert user.find(marker="message-input").elements.pop().value == "two is kept"


async def test_upstream_error_dialog(user: User, add_model) -> None:
    add_model("error500", model="broken")
    await user.open("/")
    await send(user, "will fail")
    await user.should_see("上游渠道暂时不可用，请稍后再试", retries=SEE_RETRIES)
    assert user.find(marker="message-input").elements.pop().value == "will fail"
    await user.should_not_see(marker="user-message")


async def test_a_model_whose_channels_are_all_busy_is_said_to_be_busy(user: User, add_model) -> None:
    add_model("ok", model="small", rpm_limit=1)
    await user.open("/")
    await send(user, "one")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await send(user, "two")
    await user.should_see(
        "模型当前繁忙：它的所有渠道都已达到每分钟请求上限或已暂停，请稍后再试", retries=SEE_RETRIES
    )
    await user.should_not_see(marker="error-kind")  # the message says it already: no second line
    assert user.find(marker="message-input").elements.pop().value == "two"


async def test_mid_stream_error_keeps_the_partial_answer(user: User, add_model) -> None:
    add_model("midfail")
    await user.open("/")
    await send(user, "go")
    await user.should_see("上游渠道暂时不可用，请稍后再试", retries=SEE_RETRIES)
    await user.should_see("Hello there")
    await user.should_see("回答中断：上游渠道出错")


async def test_no_models_configured(user: User) -> None:
    await user.open("/")
    await user.should_see("管理员还没有配置可用的模型")
    assert not user.find(marker="send").elements.pop().enabled


async def test_blocked_ip_is_explained_in_a_dialog(user: User, add_model) -> None:
    from sqlmodel import Session

    from services import ip_block

    add_model("ok")
    await user.open("/")
    state = app_state()
    with Session(state.engine) as session:
        ip_block.add_rule(session=session, ip_address="127.0.0.1", reason="test")
    state.block_list.refresher.reload()
    await send(user, "blocked now")
    await user.should_see("您的 IP 已被禁止访问", retries=SEE_RETRIES)


async def test_a_block_of_the_pages_ip_ends_its_answer(
    user: User, add_model, upstream: UpstreamServer, monkeypatch
) -> None:
    """Blocking another range leaves the answer running; blocking a range holding the page's IP ends it
    with the blocked dialog and cancels the upstream request. The block list's period is an hour here, so
    nothing but the admin's change (made on a worker thread, as the admin page and the API make it) can
    end the answer: the page hears of it when the change is made, not on a timer."""
    from sqlmodel import Session

    from pages.chat import BLOCKED_NOTE

    state = app_state()
    monkeypatch.setattr(state.block_list.refresher, "period", 3600.0)
    add_model("open-20", model="endless-model")  # no end of its own
    await user.open("/")
    await send(user, "go on and on")
    await user.should_see("w2", retries=SEE_RETRIES)

    def block(address: str) -> None:
        with Session(state.engine) as session:
            state.block_list.add(session=session, ip_address=address, reason="test", actor=None)

    def words_shown() -> int:
        answer = user.find(marker="answer").elements.pop()
        text = " ".join(el.content for el in answer.descendants() if isinstance(el, ui.markdown))
        return max((int(word[1:]) for word in text.split() if word[1:].isdigit()), default=0)

    await asyncio.to_thread(block, "10.0.0.0/8")
    later = words_shown() + 5
    await user.should_see(f"w{later}", retries=SEE_RETRIES)  # another range: the answer goes on
    assert upstream.ends_of("endless-model") == []

    await asyncio.to_thread(block, "127.0.0.0/8")
    await user.should_see("您的 IP 已被禁止访问", retries=SEE_RETRIES)
    await user.should_see(BLOCKED_NOTE)
    await user.should_see(f"w{later}")  # what had arrived stays
    await wait_until_async(lambda: upstream.ends_of("endless-model"), what="the end of the upstream request")
    assert [end.cancelled for end in upstream.ends_of("endless-model")] == [True]
    send_button = user.find(marker="send").elements.pop()
    assert send_button.props.get("icon") == "arrow_upward", "ready to send again (the next send is refused)"


async def test_a_long_stream_renders_and_scrolls_a_bounded_number_of_times(
    user: User, add_model, monkeypatch
) -> None:
    """Markdown is re-rendered at most eight times a second, and the page scrolls once per render, not
    once per chunk (each scroll is a message to the browser)."""
    from pages.message_view import RENDER_INTERVAL, AnswerView

    renders: list[float] = []
    scrolls: list[float] = []
    render = AnswerView.render
    monkeypatch.setattr(AnswerView, "render", lambda self, **kw: (renders.append(1), render(self, **kw))[1])
    monkeypatch.setattr(ui.scroll_area, "scroll_to", lambda self, **_: scrolls.append(1))
    add_model("slow-3-300")  # 300 chunks, 3 ms apart
    await user.open("/")
    started = asyncio.get_running_loop().time()
    await send(user, "long")
    await user.should_see("w299", retries=SEE_RETRIES)
    seconds = asyncio.get_running_loop().time() - started
    assert len(renders) <= seconds / RENDER_INTERVAL + 3, (len(renders), seconds)
    assert len(scrolls) <= len(renders) + 3, "one scroll per render, not per chunk"


async def test_a_long_answer_settles_into_pieces_rendered_once(
    user: User, add_model, upstream: UpstreamServer, monkeypatch
) -> None:
    """Paragraphs that can no longer change are rendered once; each render re-sends only the tail, which
    stays under PIECE_CHARS however long the answer. How many renders (and so pieces) an answer gets
    depends on the machine's speed, as renders are spaced by what they cost: so the answer goes on until
    three pieces have settled, and only then ends."""
    from pages.message_view import PIECE_CHARS

    converted: weakref.WeakKeyDictionary[ui.markdown, list[str]] = weakref.WeakKeyDictionary()
    convert = ui.markdown._handle_content_change

    def spy(self: ui.markdown, content: str) -> None:
        converted.setdefault(self, []).append(content)
        convert(self, content)

    monkeypatch.setattr(ui.markdown, "_handle_content_change", spy)
    add_model("open-2-20", model="open-model")  # a blank line after every 20 words, and no end of its own
    await user.open("/")
    await send(user, "long")
    await user.should_see("w1", retries=SEE_RETRIES)
    answer = user.find(marker="answer").elements.pop()

    def pieces() -> list[ui.markdown]:  # the settled pieces in order, then the live tail
        return [el for el in answer.descendants() if isinstance(el, ui.markdown)]

    try:
        await wait_until_async(lambda: len(pieces()) > 3, what="three settled pieces")
    finally:
        upstream.end_open_streams()
    send_button = user.find(marker="send").elements.pop()
    await wait_until_async(lambda: send_button.props.get("icon") == "arrow_upward", what="the answer ended")
    *settled, live = pieces()
    words = "".join(piece.content for piece in [*settled, live]).split()
    assert len(words) > 200 and words == [f"w{i}" for i in range(len(words))], "every word once, in order"
    assert all("settled" in piece.classes for piece in settled) and "settled" not in live.classes
    assert all(set(converted[piece]) == {piece.content} for piece in settled), "a piece is rendered once"
    tails = [len(content) for content in converted[live]]
    assert max(tails) < PIECE_CHARS, tails  # each render re-sent only the tail since the last piece


# ---- message actions (issue 19) -------------------------------------------------------------------------
def answer_texts(user: User) -> list[str]:
    """The answers on screen (hidden versions left out), in order."""
    texts = []
    for answer in user.find(marker="answer").elements:
        if all(element.visible for element in [answer, *answer.ancestors()]):
            texts.append("".join(el.content for el in answer.descendants() if isinstance(el, ui.markdown)))
    return texts


def visible(user: User, marker: str) -> list[ui.element]:
    try:
        found = user.find(marker=marker).elements
    except AssertionError:  # none on the page
        return []
    return [el for el in found if all(e.visible for e in [el, *el.ancestors()])]


def click(user: User, element: ui.element) -> None:
    UserInteraction(user, {element}, None).click()


def by_order(user: User, marker: str) -> list[ui.element]:
    """The elements with ``marker`` in the order they were created (the page's order)."""
    return sorted(user.find(marker=marker).elements, key=lambda element: element.id)


async def until_answered(user: User, count: int) -> None:
    await wait_until_async(
        lambda: (
            user.find(marker="send").elements.pop().props.get("icon") == "arrow_upward"
            and len(visible(user, "regenerate")) == count
        ),
        what=f"{count} answered turns",
    )


async def test_regenerate_keeps_the_previous_answer_browsable(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    add_model("nousage", model="regen-model")
    await user.open("/")
    await send(user, "question")
    await until_answered(user, 1)
    user.find(marker="regenerate").click()
    await wait_until_async(lambda: len(visible(user, "answer-index")) == 1, what="the version switch")
    await until_answered(user, 1)
    assert visible(user, "answer-index")[0].text == "2/2"
    assert answer_texts(user) == [ANSWER]
    requests = [r for r in upstream.requests_for("nousage") if r.body.get("model") == "regen-model"]
    assert [m["content"] for m in requests[-1].body["messages"]] == ["question"], "the answer is not sent"
    user.find(marker="previous-answer").click()
    await wait_until_async(lambda: visible(user, "answer-index")[0].text == "1/2", what="version 1 shown")
    assert len(answer_texts(user)) == 1
    user.find(marker="next-answer").click()
    await wait_until_async(lambda: visible(user, "answer-index")[0].text == "2/2", what="version 2 shown")


async def test_edit_resends_from_there_and_drops_what_followed(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    add_model("nousage", model="edit-model")
    await user.open("/")
    await send(user, "first")
    await until_answered(user, 1)
    await send(user, "second")
    await until_answered(user, 2)
    edits = by_order(user, "edit")
    assert len(edits) == 2
    click(user, edits[0])  # the first message's
    await user.should_see(marker="edit-box")
    box = user.find(marker="edit-box")
    box.clear().type("first, edited")
    user.find(marker="edit-save").click()
    await until_answered(user, 1)
    assert [el.text for el in visible(user, "user-message")] == ["first, edited"]
    await user.should_not_see("second")
    requests = [r for r in upstream.requests_for("nousage") if r.body.get("model") == "edit-model"]
    assert [m["content"] for m in requests[-1].body["messages"]] == ["first, edited"]


async def test_delete_removes_the_pair_and_export_writes_markdown(user: User, add_model) -> None:
    add_model("ok")
    await user.open("/")
    await send(user, "keep me")
    await until_answered(user, 1)
    await send(user, "delete me")
    await until_answered(user, 2)
    click(user, by_order(user, "delete")[1])
    await user.should_not_see("delete me")
    assert [el.text for el in visible(user, "user-message")] == ["keep me"]
    assert len(answer_texts(user)) == 1
    user.find(marker="export").click()
    response = await user.download.next(timeout=SEE_RETRIES)
    text = response.content.decode("utf-8")
    assert "## 用户\n\nkeep me" in text and ANSWER in text and "delete me" not in text


async def test_copy_puts_the_answer_markdown_on_the_clipboard(user: User, add_model, monkeypatch) -> None:
    copied: list[str] = []
    monkeypatch.setattr(ui.clipboard, "write", copied.append)
    add_model("code")
    await user.open("/")
    await send(user, "code please")
    await until_answered(user, 1)
    click(user, by_order(user, "copy")[-1])  # the answer's copy (the user message's is first)
    await wait_until_async(lambda: bool(copied), what="the copy")
    assert copied == ["".join(CODE_ANSWER)], "the answer as Markdown, fences included"


async def test_escape_stops_a_streaming_answer(user: User, add_model, upstream: UpstreamServer) -> None:
    add_model("open-200", model="esc-model")
    await user.open("/")
    await send(user, "long")
    await user.should_see("w1", retries=SEE_RETRIES)
    modifiers = {"altKey": False, "ctrlKey": False, "metaKey": False, "shiftKey": False}
    user.find(ui.keyboard).trigger(
        "key",
        {"action": "keydown", "key": "Escape", "code": "Escape", "location": 0, "repeat": False, **modifiers},
    )
    await user.should_see("已停止生成", retries=SEE_RETRIES)
    await wait_until_async(lambda: upstream.ends_of("esc-model"), what="the end of the upstream request")


async def test_controls_have_english_names_under_english(user: User, add_model) -> None:
    from nicegui import app

    add_model("ok")
    await user.open("/")
    app.storage.user["lang"] = "en"
    await user.open("/")
    await user.should_see("How can I help?")
    names = {el.props.get("aria-label") for el in user.find(ui.button).elements}
    assert {"New chat", "Send", "Export", "Dark mode"} <= names, names
    await user.should_see("Sign in", marker="login")
    await send(user, "hi")
    await until_answered(user, 1)
    names = {el.props.get("aria-label") for el in user.find(ui.button).elements}
    assert {"Copy", "Regenerate", "Edit", "Delete"} <= names, names


async def test_an_answer_cut_by_a_dropped_connection_is_marked_with_a_retry(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    """The page's connection drops (the browser comes back within the reconnect window, so the page
    stays): the answer ends, marked interrupted, and Retry asks again as a new version."""
    from pages.chat import RECONNECT_SECONDS

    assert RECONNECT_SECONDS >= 300
    add_model("open-200", model="drop-model")
    await user.open("/")
    await send(user, "long")
    await user.should_see("w1", retries=SEE_RETRIES)
    client = user.client
    assert client is not None
    for handler in client.disconnect_handlers:  # what NiceGUI runs when the page's socket goes away
        client.safe_invoke(handler)
    await user.should_see("已中断", retries=SEE_RETRIES)
    await wait_until_async(lambda: upstream.ends_of("drop-model"), what="the end of the upstream request")
    assert [end.cancelled for end in upstream.ends_of("drop-model")] == [True]
    user.find(marker="retry").click()
    send_button = user.find(marker="send").elements.pop()
    await wait_until_async(lambda: send_button.props.get("icon") == "stop", what="the retry answering")
    await user.should_see("w1", retries=SEE_RETRIES)
    user.find(marker="send").click()  # stop the endless answer
    await until_answered(user, 1)
    assert [el.text for el in visible(user, "answer-index")] == ["2/2"]


async def test_the_model_picker_lists_public_names_and_searches_past_ten(user: User, add_model) -> None:
    add_model("ok", model="gpt-a", name="内部渠道 A")
    await user.open("/")
    picker = user.find(marker="model-select").elements.pop()
    assert isinstance(picker, ui.select)
    assert list(picker.options.values()) == ["gpt-a"], "public model names, never channel names"
    assert "use-input" not in picker.props
    for index in range(10):
        add_model("ok", model=f"model-{index:02d}")
    await user.open("/")
    picker = user.find(marker="model-select").elements.pop()
    assert isinstance(picker, ui.select) and len(picker.options) == 11
    assert picker.props.get("use-input") is True, "searchable past ten models"
