"""What the chat page's messages offer: copy and edit under the user's message (saving an edit sends it
again); browse the versions (1/2, 2/2), copy, regenerate and delete under an answer; and the whole
conversation as a Markdown file (made in memory, sent to the browser)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from nicegui import events, ui

from pages.i18n import named, t
from pages.turns import Turn

if TYPE_CHECKING:
    from pages.chat import ChatPage


def _action(
    icon: str, key: str, marker: str, handler: events.Handler[events.ClickEventArguments]
) -> ui.button:
    return named(ui.button(icon=icon, on_click=handler).props("flat round dense size=sm"), key).mark(marker)


class TurnActions:
    """The actions row under each message of ``page``, and the export of its conversation."""

    def __init__(self, page: ChatPage) -> None:
        self.page = page

    def user_actions(self, turn: Turn) -> None:
        actions = turn.view.actions
        actions.clear()
        with actions:
            _action("content_copy", "chat.copy", "copy", lambda: self._copy(turn.text))
            _action("edit", "chat.edit", "edit", lambda: self._edit(turn))

    def answer_actions(self, turn: Turn) -> None:
        answer = turn.answer
        if answer is None:
            return
        answer.actions.clear()
        with answer.actions:
            if len(turn.answers) > 1:
                _action(
                    "chevron_left", "chat.previous_answer", "previous-answer", lambda: self._show(turn, -1)
                )
                ui.label(f"{turn.shown + 1}/{len(turn.answers)}").classes("answer-index").mark("answer-index")
                _action("chevron_right", "chat.next_answer", "next-answer", lambda: self._show(turn, 1))
            _action("content_copy", "chat.copy", "copy", lambda: self._copy(answer.content))
            _action("refresh", "chat.regenerate", "regenerate", lambda: self.regenerate(turn))
            _action("delete_outline", "chat.delete", "delete", lambda: self.delete(turn))

    def _copy(self, text: str) -> None:
        ui.clipboard.write(text)
        ui.notify(t("chat.copied"), type="positive", timeout=1200)

    def _show(self, turn: Turn, step: int) -> None:
        """Browse the versions of a regenerated answer."""
        shown = turn.shown + step
        if not 0 <= shown < len(turn.answers):
            return
        turn.answers[turn.shown].set_shown(False)
        turn.shown = shown
        turn.answers[shown].set_shown(True)
        self.answer_actions(turn)

    def _drop_from(self, index: int) -> None:
        """The turns from ``index`` on go: what follows an edited or regenerated message no longer fits."""
        turns = self.page.turns
        for later in turns[index:]:
            later.delete()
        del turns[index:]

    async def regenerate(self, turn: Turn) -> None:
        page = self.page
        await page.answering.stop()
        if turn not in page.turns or not await page.ready():
            return
        self._drop_from(page.turns.index(turn) + 1)
        page.answering.ask(turn)

    async def delete(self, turn: Turn) -> None:
        """Delete a message and its answers (the pair)."""
        page = self.page
        if page.answering.busy and turn is page.turns[-1]:
            await page.answering.stop()
        if turn not in page.turns:
            return
        page.turns.remove(turn)
        turn.delete()
        if not page.turns:
            page.empty.set_visibility(True)

    def _edit(self, turn: Turn) -> None:
        """Edit a message in place; saving sends it again, and what followed it goes."""
        page = self.page
        view = turn.view
        view.label.set_visibility(False)
        view.actions.set_visibility(False)
        with view.stack, ui.column().classes("edit-box w-full gap-1") as editor:
            box = (
                ui.textarea(value=turn.text)
                .props(f'autogrow outlined dense aria-label="{t("chat.edit_box")}"')
                .classes("w-full")
                .mark("edit-box")
            )
            with ui.row().classes("justify-end gap-1 w-full"):

                def cancel() -> None:
                    editor.delete()
                    view.label.set_visibility(True)
                    view.actions.set_visibility(True)

                async def save() -> None:
                    text = (box.value or "").strip()
                    if not text:
                        return
                    await page.answering.stop()
                    if turn not in page.turns or not await page.ready():
                        return
                    self._drop_from(page.turns.index(turn))
                    page.start_turn(text, turn.images)

                ui.button(t("chat.cancel"), on_click=cancel).props("flat dense no-caps").mark("edit-cancel")
                ui.button(t("chat.save_and_send"), on_click=save).props("unelevated dense no-caps").mark(
                    "edit-save"
                )
        box.run_method("focus")

    def export_markdown(self) -> str:
        """The conversation as Markdown: each message under its speaker, answers as they were written."""
        lines = [f"# {t('chat.export_title')} · pyaichat", ""]
        model = self.page.model_select.value
        for turn in self.page.turns:
            lines += [f"## {t('chat.export_user')}", "", turn.text, ""]
            answer = turn.answer
            if answer is not None and answer.content:
                lines += [f"## {t('chat.export_assistant')} ({model})", "", answer.content, ""]
                if answer.note:
                    lines += [f"*{answer.note}*", ""]
        return "\n".join(lines)

    def export(self) -> None:
        if not self.page.turns:
            ui.notify(t("chat.nothing_to_export"), type="info")
            return
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        ui.download.content(
            self.export_markdown().encode("utf-8"), f"pyaichat-{stamp}.md", media_type="text/markdown"
        )
