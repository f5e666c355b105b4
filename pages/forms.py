"""The line under a form that says what is wrong, and the submit that fills it.

Every form of the chat page and the console says a refusal that concerns its inputs (a wrong password, a
taken email, an invalid value) under the form, where the user is looking, and anything else (too many
attempts, a blocked IP, …) in the error dialog. :class:`FormError` holds that rule once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from pages.dialogs import show_error
from pages.i18n import language
from services.errors import DomainError


class FormError:
    """A hidden red line under a form (``marker`` for the tests); :meth:`say` shows a message in it."""

    def __init__(self, marker: str, *, classes: str = "") -> None:
        self.label = ui.label("").classes(f"text-negative text-sm {classes}".strip()).mark(marker)
        self.label.set_visibility(False)

    def say(self, text: str) -> None:
        self.label.text = text
        self.label.set_visibility(True)

    def clear(self) -> None:
        self.label.set_visibility(False)

    async def attempt(
        self,
        action: Callable[[], Awaitable[object]],
        *,
        inline: tuple[type[DomainError], ...] = (DomainError,),
        button: ui.button | None = None,
    ) -> bool:
        """Runs ``action`` (``button`` shows it loading meanwhile). A refusal of an ``inline`` kind is said
        here, any other in the error dialog. True when the action went through."""
        self.clear()
        if button is not None:
            button.props("loading")
        try:
            await action()
        except inline as failure:
            self.say(failure.text(language()))
            return False
        except DomainError as failure:
            show_error(failure)
            return False
        finally:
            if button is not None:
                button.props(remove="loading")
        return True
