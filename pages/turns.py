"""The chat page's conversation as data: a turn is the user's message and the answers it got (a
regenerated answer is one more version, browsable as 1/2, 2/2), and the turns make the messages that go
upstream."""

from __future__ import annotations

import dataclasses
from typing import Any

from pages.attachments import Attached
from pages.message_view import AnswerView, UserView
from services.images import user_content


@dataclasses.dataclass(eq=False)
class Turn:
    """One message of the user and the answers it got; ``shown`` is the version on screen."""

    text: str
    view: UserView
    answers: list[AnswerView] = dataclasses.field(default_factory=list)
    shown: int = 0
    images: list[Attached] = dataclasses.field(default_factory=list)  # sent along, never stored

    @property
    def answer(self) -> AnswerView | None:
        return self.answers[self.shown] if self.answers else None

    def delete(self) -> None:
        self.view.row.delete()
        for answer in self.answers:
            answer.drop()


def upstream_messages(turns: list[Turn]) -> list[dict[str, Any]]:
    """The messages of ``turns`` as they go upstream, each with the answer version on screen; user content
    with images is OpenAI content parts."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        messages.append({"role": "user", "content": user_content(turn.text, [i.url for i in turn.images])})
        answer = turn.answer
        if answer is not None and answer.content:
            messages.append({"role": "assistant", "content": answer.content})
    return messages
