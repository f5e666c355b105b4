"""The chat page's conversation settings panel and image attachments (simulated user, loopback upstream)."""

from __future__ import annotations

import base64

from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from sqlmodel import Session

from services.images import MAX_IMAGE_BYTES
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg=="
)


def set_model(model: str, **changes: object) -> None:
    state = app_state()
    with Session(state.engine) as session:
        state.model_settings.update(session=session, model=model, changes=changes, actor=None)


def sent_to(upstream: UpstreamServer, model: str) -> list[dict]:
    return [r.body for r in upstream.received if r.body.get("model") == model]


async def attach(user: User, name: str, data: bytes) -> None:
    upload = user.find(marker="image-upload").elements.pop()
    assert isinstance(upload, ui.upload)
    await upload.handle_uploads([SmallFileUpload(name=name, content_type="image/png", _data=data)])


async def test_settings_and_admin_defaults_reach_the_upstream(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    model = add_model("ok", model="settings-model")
    set_model(model, system_prompt="Admin prompt", temperature=0.9, max_tokens=321)
    await user.open("/")
    user.find(marker="settings").click()
    await user.should_see("对话设置")
    # the admin's defaults, shown as the empty fields' hints
    assert user.find(marker="max_tokens").elements.pop().props["hint"] == "默认：321"
    assert user.find(marker="system-prompt").elements.pop().props["placeholder"] == "默认：Admin prompt"
    user.find(marker="system-prompt").type("You are a pirate.")
    user.find(marker="temperature").elements.pop().value = 0.4
    user.find(marker="message-input").type("ahoy")
    user.find(marker="send").click()
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await wait_until_async(lambda: len(sent_to(upstream, model)) == 1, what="the call upstream")
    body = sent_to(upstream, model)[0]
    assert body["messages"] == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "ahoy"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0.4, 321)  # own value first, else the admin's
    assert "top_p" not in body  # set by nobody: the upstream's own default


async def test_a_setting_out_of_range_is_refused_before_sending(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    model = add_model("ok", model="range-model")
    await user.open("/")
    user.find(marker="top_p").elements.pop().value = 3
    user.find(marker="message-input").type("hi")
    user.find(marker="send").click()
    await user.should_see("Top-p 必须在 0.0 到 1.0 之间")
    assert sent_to(upstream, model) == []


async def test_images_are_previewed_sent_as_parts_and_shown_in_the_message(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    model = add_model("ok", model="vision-model")
    set_model(model, vision=True)
    await user.open("/")
    await attach(user, "cat.png", PNG)
    await user.should_see(marker="attachment-preview")
    user.find(marker="message-input").type("what is this?")
    user.find(marker="send").click()
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await user.should_see(marker="message-image")
    await user.should_not_see(marker="attachment-preview")  # the composer starts empty again
    body = sent_to(upstream, model)[0]
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


async def test_bad_images_are_refused_before_sending(user: User, add_model, upstream: UpstreamServer) -> None:
    model = add_model("ok", model="refusing-model")
    set_model(model, vision=True)
    await user.open("/")
    await attach(user, "notes.png", b"just some text, renamed")
    await user.should_see("notes.png 不是 PNG、JPEG、WebP 或 GIF 图片，未添加")
    await attach(user, "huge.png", PNG + b"\0" * (MAX_IMAGE_BYTES + 1 - len(PNG)))
    await user.should_see("图片 huge.png 超过 10 MB，未添加")
    for number in range(5):
        await attach(user, f"p{number}.png", PNG)
    await attach(user, "sixth.png", PNG)
    await user.should_see("每条消息最多 5 张图片，已忽略 sixth.png")
    assert len(user.find(marker="attachment-preview").elements) == 5
    assert sent_to(upstream, model) == []


async def test_images_for_a_model_without_vision_are_refused_in_the_page(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    model = add_model("ok", model="text-only-model")
    await user.open("/")
    await attach(user, "cat.png", PNG)
    user.find(marker="message-input").type("see?")
    user.find(marker="send").click()
    await user.should_see("模型 text-only-model 不支持图片：请移除图片，或换一个支持图片的模型")
    assert sent_to(upstream, model) == []
    assert user.find(marker="message-input").elements.pop().value == "see?"  # nothing lost
    user.find(marker="remove-attachment").click()
    await user.should_not_see(marker="attachment-preview")


async def test_a_conversation_with_images_is_not_sent_on_to_a_model_without_vision(
    user: User, add_model, upstream: UpstreamServer
) -> None:
    seeing = add_model("ok", model="seeing-model")
    blind = add_model("ok", model="blind-model")
    set_model(seeing, vision=True)
    await user.open("/")
    user.find(marker="model-select").elements.pop().value = seeing
    await attach(user, "cat.png", PNG)
    user.find(marker="message-input").type("look")
    user.find(marker="send").click()
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    user.find(marker="model-select").elements.pop().value = blind
    user.find(marker="message-input").type("and now?")
    user.find(marker="send").click()
    await user.should_see(
        "这段对话里有图片，模型 blind-model 不支持图片：请换一个支持图片的模型，或开始新对话"
    )
    assert sent_to(upstream, blind) == []
