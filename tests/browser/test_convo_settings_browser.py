"""Conversation settings and image attachments in headless Chromium (zh-CN): the settings panel, an image
picked through the file input, the request the upstream got, the previews, and the refusals before
sending. Screenshots land in tests/browser/screenshots/."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from services.i18n import LANGUAGES, translate
from services.images import MAX_IMAGE_BYTES
from tests.browser.conftest import screenshot
from tests.browser.test_chat_browser import answer_text, choose_model, open_chat, type_and_send, wait
from tests.chat_helpers import add_channel, unique_model
from tests.helpers import RunningApp
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg=="
)
FILE_INPUT = (By.CSS_SELECTOR, ".q-uploader input[type=file]")
PREVIEWS = (By.CSS_SELECTOR, ".attachment-previews .attachment-preview")


def _language(driver) -> str:
    """The page's language (the browser's, as the page negotiated it): the texts below follow it."""
    labels = {translate("convo.settings", code): code for code in LANGUAGES}
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label]"))
    found = [
        b.get_attribute("aria-label") for b in driver.find_elements(By.CSS_SELECTOR, "button[aria-label]")
    ]
    return next(labels[label] for label in found if label in labels)


def _button(driver, key: str, language: str):
    return driver.find_element(By.CSS_SELECTOR, f"button[aria-label='{translate(key, language)}']")


def _notified(driver, text: str) -> None:
    wait(driver).until(
        lambda d: any(text in n.text for n in d.find_elements(By.CSS_SELECTOR, ".q-notification"))
    )


def _vision_model(admin_api: httpx.Client, upstream: UpstreamServer) -> str:
    model = unique_model("vision")
    add_channel(admin_api, {}, base_url=upstream.base_url("ok"), model=model, name=model)
    assert admin_api.put(f"/api/admin/models/{model}", json={"vision": True}).status_code == 200
    return model


def test_settings_and_an_image_reach_the_upstream_and_show_in_the_message(
    driver, browser_app: RunningApp, admin_api: httpx.Client, upstream: UpstreamServer, tmp_path: Path
) -> None:
    model = _vision_model(admin_api, upstream)
    open_chat(driver, browser_app)
    choose_model(driver, model)
    language = _language(driver)
    _button(driver, "convo.settings", language).click()
    panel = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".convo-settings")))
    panel.find_element(By.CSS_SELECTOR, "textarea").send_keys("你是一位海盗。")
    panel.find_elements(By.CSS_SELECTOR, "input[type=number]")[0].send_keys("0.3")
    screenshot(driver, "convo-settings-panel")
    panel.find_element(By.CSS_SELECTOR, f"button[aria-label='{translate('convo.close', language)}']").click()
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".convo-settings")))

    assert _button(driver, "convo.attach", language).is_displayed()
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    driver.find_element(*FILE_INPUT).send_keys(str(picture))
    wait(driver).until(EC.visibility_of_element_located(PREVIEWS))
    screenshot(driver, "convo-attachment-preview")
    type_and_send(driver, "这是什么？")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".msg-row.user img")))
    assert not driver.find_elements(*PREVIEWS)
    screenshot(driver, "convo-image-in-message")

    sent = [r.body for r in upstream.received if r.body.get("model") == model]
    assert len(sent) == 1
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert sent[0]["messages"] == [
        {"role": "system", "content": "你是一位海盗。"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "这是什么？"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ], json.dumps(sent[0], ensure_ascii=False)[:500]
    assert sent[0]["temperature"] == 0.3


def test_bad_images_are_refused_before_sending(
    driver, browser_app: RunningApp, admin_api: httpx.Client, upstream: UpstreamServer, tmp_path: Path
) -> None:
    model = _vision_model(admin_api, upstream)
    open_chat(driver, browser_app)
    choose_model(driver, model)
    language = _language(driver)
    fake = tmp_path / "fake.png"
    fake.write_text("this is text, not a picture")
    driver.find_element(*FILE_INPUT).send_keys(str(fake))
    _notified(driver, translate("convo.not_image", language, name="fake.png"))
    huge = tmp_path / "huge.png"
    huge.write_bytes(PNG + b"\0" * (12 * 1024 * 1024 - len(PNG)))
    assert huge.stat().st_size > MAX_IMAGE_BYTES
    driver.find_element(*FILE_INPUT).send_keys(str(huge))
    _notified(driver, translate("convo.too_large", language, name="huge.png", max=10))
    pictures = []
    for number in range(6):
        pictures.append(tmp_path / f"p{number}.png")
        pictures[-1].write_bytes(PNG)
    driver.find_element(*FILE_INPUT).send_keys("\n".join(str(p) for p in pictures))
    # the picture refused is the one that arrives sixth: uploads finish in any order
    refusals = [translate("convo.too_many", language, max=5, name=f"p{n}.png") for n in range(6)]
    wait(driver).until(
        lambda d: any(
            r in n.text for n in d.find_elements(By.CSS_SELECTOR, ".q-notification") for r in refusals
        )
    )
    wait(driver).until(lambda d: len(d.find_elements(*PREVIEWS)) == 5)
    screenshot(driver, "convo-attachment-refusals")
    assert not [r for r in upstream.received if r.body.get("model") == model]


# a PNG pasted into the message box, or dropped on the composer, as the browser delivers them
_PASTE_AND_DROP = """
const [png, target, kind] = arguments;
const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
const files = new DataTransfer();
files.items.add(new File([bytes], kind + ".png", {type: "image/png"}));
const event = kind === "pasted"
    ? new ClipboardEvent("paste", {clipboardData: files, bubbles: true, cancelable: true})
    : new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true});
document.querySelector(target).dispatchEvent(event);
"""


def test_an_image_pasted_or_dropped_joins_the_message(
    driver, browser_app: RunningApp, admin_api: httpx.Client, upstream: UpstreamServer
) -> None:
    model = _vision_model(admin_api, upstream)
    open_chat(driver, browser_app)
    choose_model(driver, model)
    encoded = base64.b64encode(PNG).decode()
    driver.execute_script(_PASTE_AND_DROP, encoded, ".composer textarea", "pasted")
    wait(driver).until(lambda d: len(d.find_elements(*PREVIEWS)) == 1)
    driver.execute_script(_PASTE_AND_DROP, encoded, ".composer", "dropped")
    wait(driver).until(lambda d: len(d.find_elements(*PREVIEWS)) == 2)
    screenshot(driver, "convo-pasted-and-dropped")
    type_and_send(driver, "two pictures")
    wait(driver).until(lambda d: ANSWER in answer_text(d))
    sent = [r.body for r in upstream.received if r.body.get("model") == model]
    parts = sent[0]["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url", "image_url"]
