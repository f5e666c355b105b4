"""Downloads that both front doors serve: the call log as CSV is sent by the API's
``/api/admin/logs/export`` and by the admin page's ``/admin/logs/export.csv`` (a browser download cannot
carry the API's bearer token, so the page has its own endpoint behind the browser session)."""

from __future__ import annotations

from datetime import datetime

from fastapi.responses import StreamingResponse

from app.state import AppState
from services import log_export
from services.i18n import FALLBACK
from services.log_queries import LogFilter


def log_csv_response(state: AppState, flt: LogFilter, language: str = FALLBACK) -> StreamingResponse:
    """The filtered call log as a streamed CSV attachment (its words in ``language``); the rows are read
    and rendered on Starlette's thread pool (the generator is synchronous), never on the event loop."""
    name = f"chat-logs-{datetime.now(state.settings.zone):%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        log_export.export_csv(engine=state.engine, flt=flt, zone=state.settings.zone, language=language),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
