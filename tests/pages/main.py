"""The app as NiceGUI's simulated ``user`` fixture runs it (settings come from the test's environment)."""

from nicegui import ui

from app.config import load_settings
from app.main import build_state, configure_app

settings, _info = load_settings()
configure_app(build_state(settings))
ui.run(storage_secret=settings.secret("secret_key"), title="pyaichat", language="zh-CN", tailwind=False)
