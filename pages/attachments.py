"""Image attachments of the chat page's next message: the "Attach image" button, paste into the message
box and drag-and-drop onto the composer, previews with a remove button.

The files travel by NiceGUI's upload route (a hidden ``ui.upload``, so picking, pasting and dropping
share one way in) and are kept in this page's memory only, as ``data:`` URLs, until the message is
sent; nothing is written to the server's disk or database. Each file is checked here, before it can be
sent: at most ``MAX_IMAGES`` per message, ``MAX_IMAGE_BYTES`` each (larger ones are refused in the
browser, before their upload), and a PNG, JPEG, WebP or GIF by its first bytes (a text file renamed
``.png`` is refused)."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import events, ui

from pages.i18n import t
from services.images import IMAGE_TYPES, MAX_IMAGE_BYTES, MAX_IMAGES, data_url, sniff_image

MAX_MB = MAX_IMAGE_BYTES // (1024 * 1024)
# the browser side of the upload: Quasar's uploader behind the hidden ``ui.upload``
_UPLOADER = "getElement({id}).$refs.qRef"
# a rejected file (too large, not an image type) is reported with its reason, name and size
_REJECTED = "(entries) => emit(entries.map((e) => [e.failedPropValidation, e.file.name, e.file.size]))"


@dataclass(frozen=True)
class Attached:
    name: str
    url: str  # data:image/…;base64,…


class Attachments:
    def __init__(self) -> None:
        self.images: list[Attached] = []

    # ---- UI ----------------------------------------------------------------------------------------
    def build(self) -> None:
        """The previews' row and the hidden uploader (place them above the composer)."""
        self.previews = ui.row().classes("attachment-previews w-full gap-2").mark("attachments")
        self.previews.set_visibility(False)
        self.upload = (
            ui.upload(
                multiple=True, auto_upload=True, max_file_size=MAX_IMAGE_BYTES, on_upload=self._received
            )
            .props(f'accept="{",".join(IMAGE_TYPES)}"')
            .classes("hidden")
            .mark("image-upload")
        )
        self.upload.on("rejected", self._rejected, js_handler=_REJECTED)
        self.upload.on("finish", lambda: self.upload.reset())

    def button(self) -> ui.button:
        """The "Attach image" button: opens the browser's file picker (in the click itself, which the
        browser requires)."""
        label = t("convo.attach")
        button = (
            ui.button(icon="image")
            .props(f'flat round dense aria-label="{label}"')
            .tooltip(label)
            .mark("attach")
        )
        button.on("click", js_handler=f"() => {self._uploader}.pickFiles()")
        return button

    def accept_drops(self, composer: ui.element, message_box: ui.element) -> None:
        """Files pasted into ``message_box`` or dropped on ``composer`` join the attachments."""
        add = f"{self._uploader}.addFiles(files)"
        message_box.on(
            "paste",
            js_handler="(e) => { const files = [...((e.clipboardData || {}).files || [])]; "
            f"if (files.length) {{ e.preventDefault(); {add}; }} }}",
        )
        composer.on("dragover", js_handler="(e) => e.preventDefault()")
        composer.on(
            "drop",
            js_handler="(e) => { const files = [...((e.dataTransfer || {}).files || [])]; "
            f"if (files.length) {{ e.preventDefault(); {add}; }} }}",
        )

    @property
    def _uploader(self) -> str:
        return _UPLOADER.format(id=self.upload.id)

    # ---- files ---------------------------------------------------------------------------------------
    async def _received(self, event: events.UploadEventArguments) -> None:
        await self.add(event.file.name, await event.file.read())

    async def add(self, name: str, data: bytes) -> bool:
        """Attach one file, or tell why not (a notification); the same checks whichever way it came."""
        if len(self.images) >= MAX_IMAGES:
            ui.notify(t("convo.too_many", max=MAX_IMAGES, name=name), type="warning")
            return False
        if len(data) > MAX_IMAGE_BYTES:
            ui.notify(t("convo.too_large", name=name, max=MAX_MB), type="warning")
            return False
        mime = sniff_image(data)
        if mime is None:
            ui.notify(t("convo.not_image", name=name), type="warning")
            return False
        self.images.append(Attached(name=name, url=data_url(mime, data)))
        self._show()
        return True

    def _rejected(self, event: events.GenericEventArguments) -> None:
        entries = event.args if isinstance(event.args, list) else []
        for entry in entries:
            reason, name = (
                (entry[0], str(entry[1])) if isinstance(entry, list) and len(entry) >= 2 else ("", "")
            )
            if reason == "max-file-size":
                ui.notify(t("convo.too_large", name=name, max=MAX_MB), type="warning")
            elif reason == "max-files":
                ui.notify(t("convo.too_many", max=MAX_IMAGES, name=name), type="warning")
            else:
                ui.notify(t("convo.not_image", name=name), type="warning")

    def remove(self, image: Attached) -> None:
        if image in self.images:
            self.images.remove(image)
        self._show()

    def take(self) -> list[Attached]:
        """The images of the message being sent; the composer starts empty again."""
        taken, self.images = self.images, []
        self._show()
        return taken

    def give_back(self, images: list[Attached]) -> None:
        """A message that was not sent returns its images to the composer."""
        self.images = [*images, *self.images][:MAX_IMAGES]
        self._show()

    def _show(self) -> None:
        self.previews.clear()
        with self.previews:
            for image in self.images:
                with ui.element("div").classes("attachment-preview relative").mark("attachment-preview"):
                    preview = ui.image(image.url).style(
                        "width: 64px; height: 64px; border-radius: 8px; object-fit: cover"
                    )
                    _named(preview, "alt", t("convo.image_alt", name=image.name))
                    remove = (
                        ui.button(icon="close", on_click=lambda i=image: self.remove(i))
                        .props("round dense size=xs color=grey-8")
                        .classes("absolute")
                        .style("top: -6px; right: -6px")
                        .mark("remove-attachment")
                    )
                    _named(remove, "aria-label", t("convo.remove_image", name=image.name))
        self.previews.set_visibility(bool(self.images))


def show_in_message(bubble: ui.element, images: list[Attached]) -> None:
    """The sent images, shown under the user's message."""
    if not images:
        return
    bubble.style("flex-wrap: wrap")  # the images on a line of their own, under the text
    with bubble, ui.row().classes("w-full justify-end gap-2").mark("message-images"):
        for image in images:
            shown = ui.image(image.url).style(
                "width: 160px; max-width: 40vw; height: 120px; border-radius: 8px; object-fit: cover"
            )
            _named(shown.mark("message-image"), "alt", t("convo.image_alt", name=image.name))


def _named(element: ui.element, attribute: str, text: str) -> None:
    """An attribute holding text from outside (a file name): set as a value, never parsed as props."""
    element.props[attribute] = text
    element.update()
