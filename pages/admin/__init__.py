"""``/admin``: the admin console (dashboard, channels, users, logs, IP block list, settings, audit log)."""

from __future__ import annotations

from app.state import AppState


def register(state: AppState) -> None:
    from pages.admin import audit, channels, dashboard, ip, login, logs, models, settings, users

    login.register(state)
    dashboard.register(state)
    channels.register(state)
    users.register(state)
    logs.register(state)
    ip.register(state)
    settings.register(state)
    audit.register(state)
    models.register(state)
