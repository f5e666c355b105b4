"""What a chat page shows once the server it was built by is gone (a restart, a deploy, or a connection
that came back after the page's ``reconnect_timeout``): the conversation stays on screen with a notice,
instead of NiceGUI's automatic reload that would wipe it.

NiceGUI's client reconnects its socket; the new process does not know the page's client id, refuses the
socket's implicit handshake, and the client's ``connect_error`` handler reloads the page. The hook below
wraps that handler: for exactly that refusal it stops the socket and shows the notice (built with the
page, hidden until then, so it needs no server); every other connection error goes to NiceGUI as before.

With no server, nothing that goes through it works any more (the message actions, the header's export):
the notice's own buttons run in the browser only — an export of the text on screen, and a new chat (a
reload, which does not ask "leave the page?" since the user asked for it)."""

from __future__ import annotations

import json

from nicegui import ui

from pages.i18n import t

RESTARTED_CLASS = "server-restarted"  # on <body> once the page's server is gone
NEW_CHAT_ASKED = "window.pyaichatNewChat"  # set by the notice's New chat: the reload needs no confirmation

# run once the socket exists (ui.run_javascript waits for the connection)
HOOK_SCRIPT = f"""
(() => {{
  const socket = window.socket;
  if (!socket || socket.pyaichatHooked) return;
  socket.pyaichatHooked = true;
  const nicegui = socket.listeners('connect_error');
  socket.off('connect_error');
  socket.on('connect_error', (err) => {{
    if (err.message !== 'Implicit handshake failed') {{ nicegui.forEach((handler) => handler(err)); return; }}
    socket.disconnect();
    document.getElementById('popup')?.setAttribute('aria-hidden', 'true');
    document.body.classList.add('{RESTARTED_CLASS}');
  }});
}})();
"""


def _export_script() -> str:
    """The conversation's text as on screen (the answer versions shown), as a Markdown file, in the
    browser: the server that made the header's export is gone."""
    user, assistant = (
        json.dumps(f"## {t('chat.export_user')}"),
        json.dumps(f"## {t('chat.export_assistant')}"),
    )
    return f"""() => {{
  const parts = [...document.querySelectorAll('.bubble.user, .bubble.assistant .answer')]
    .filter((el) => el.getClientRects().length)
    .map((el) => (el.classList.contains('user') ? {user} : {assistant}) + '\\n\\n' + el.innerText);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([parts.join('\\n\\n') + '\\n'], {{type: 'text/markdown'}}));
  link.download = 'pyaichat-conversation.md';
  link.click();
}}"""


def restart_notice() -> ui.row:
    """The notice, hidden (theme.css) until the hook adds ``RESTARTED_CLASS`` to the body."""
    with (
        ui.row()
        .classes("restart-notice items-center gap-2")
        .props('role="alert"')
        .mark("restart-notice") as notice
    ):
        ui.icon("restart_alt", size="22px", color="warning")
        ui.label(t("chat.server_restarted")).classes("grow text-sm")
        ui.button(t("chat.export_text"), icon="download").props("flat dense no-caps").on(
            "click", js_handler=_export_script()
        ).mark("restart-export")
        ui.button(t("chat.new_chat"), icon="add_comment").props("unelevated dense no-caps").on(
            "click", js_handler=f"() => {{ {NEW_CHAT_ASKED} = true; window.location.reload(); }}"
        ).mark("restart-new-chat")
    return notice
