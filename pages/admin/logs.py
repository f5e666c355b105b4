"""``/admin/logs``: the call log with filters, server-side pages, and CSV export of exactly the filtered
rows (the download is served by ``/admin/logs/export.csv`` to the signed-in admin's browser session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from nicegui import app, events, ui
from sqlmodel import Session

from app.downloads import log_csv_response
from app.state import AppState
from pages.admin.frame import admin_frame, current_admin
from pages.admin.widgets import date_range, page_heading, query_buttons
from pages.forms import FormError
from pages.i18n import language, t, visitor_language
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import channels, log_queries
from services.errors import AuthenticationFailed, InvalidInput

PAGE_SIZES = [20, 50, 100]
SORTS = {
    "-time": "admin.logs.sort.desc_time",
    "time": "admin.logs.sort.time",
    "-duration": "admin.logs.sort.desc_duration",
    "duration": "admin.logs.sort.duration",
    "-tokens": "admin.logs.sort.desc_tokens",
    "tokens": "admin.logs.sort.tokens",
}
REASON_WORDS = {  # the error column: the reason code in words (docs/api.md reason codes)
    "http_401": "admin.logs.reason.http_401",
    "http_4xx": "admin.logs.reason.http_4xx",
    "http_429": "admin.logs.reason.http_429",
    "http_5xx": "admin.logs.reason.http_5xx",
    "tls": "admin.logs.reason.tls",
    "proxy": "admin.logs.reason.proxy",
    "timeout_connect": "admin.logs.reason.timeout_connect",
    "timeout_first_event": "admin.logs.reason.timeout_first_event",
    "timeout_idle": "admin.logs.reason.timeout_idle",
    "bad_stream": "admin.logs.reason.bad_stream",
    "server_error": "admin.logs.reason.server_error",
    "all_busy": "admin.logs.reason.all_busy",
}
# the user and IP cells are links: a click filters the log by them
FILTER_CELL = (
    '<q-td :props="props"><a class="cursor-pointer text-primary" '
    "@click=\"$parent.$emit('{event}', props.row)\">{{{{ props.value }}}}</a></q-td>"
)
STATUS_LABELS = {
    "ok": "admin.logs.status.ok",
    "upstream_error": "admin.logs.status.upstream_error",
    "client_aborted": "admin.logs.status.client_aborted",
    "timeout": "admin.logs.status.timeout",
    "server_shutdown": "admin.logs.status.server_shutdown",
}
COLUMNS: list[dict[str, Any]] = [
    {"name": "time", "field": "time", "align": "left", "sortable": True},
    {"name": "ip", "field": "ip", "align": "left"},
    {"name": "user", "field": "user", "align": "left"},
    {"name": "model", "field": "model", "align": "left"},
    {"name": "channel", "field": "channel", "align": "left"},
    {"name": "status", "field": "status", "align": "left"},
    {"name": "error", "field": "error", "align": "left"},
    {"name": "prompt", "field": "prompt", "align": "right", "sortable": True},
    {"name": "completion", "field": "completion", "align": "right", "sortable": True},
    {"name": "duration", "field": "duration", "align": "right", "sortable": True},
]


@dataclass
class LogView:
    sort: str = log_queries.DEFAULT_LOG_SORT
    page_size: int = PAGE_SIZES[0]
    loads: int = 0  # loads started: only the latest one's answer is shown


# a click on a column header sorts on the server: the column -> the API's sort key (tokens: the sum)
HEADER_SORTS = {"time": "time", "duration": "duration", "prompt": "tokens", "completion": "tokens"}


def _table_pagination(sort: str, total: int) -> dict[str, object]:
    """Quasar's server-side mode (rowsNumber): a header click emits ``request``, never sorts the page."""
    column = {"time": "time", "duration": "duration", "tokens": "prompt"}[sort.removeprefix("-")]
    return {"rowsPerPage": 0, "rowsNumber": total, "sortBy": column, "descending": sort.startswith("-")}


def _tokens(value: int | None, estimated: bool) -> str:
    return f"{value or 0}{'*' if estimated else ''}"  # * marks an estimate (no usage from the upstream)


def _reason(code: str | None) -> str:
    if not code:
        return ""
    return t(REASON_WORDS[code]) if code in REASON_WORDS else code


def register(state: AppState) -> None:
    zone = state.settings.zone

    @app.get("/admin/logs/export.csv", include_in_schema=False)
    async def export_for_page(request: Request) -> Response:
        if await current_admin(state) is None:
            return JSONResponse(
                AuthenticationFailed("errors.admin_required").body(visitor_language(request)),
                status_code=401,
            )
        params = request.query_params
        try:
            flt = log_queries.parse_filter(
                start=params.get("start"),
                end=params.get("end"),
                user=params.get("user"),
                ip=params.get("ip"),
                model=params.get("model"),
                status=params.get("status"),
                channel=params.get("channel"),
                zone=zone,
            )
        except InvalidInput as exc:
            return JSONResponse(exc.body(visitor_language(request)), status_code=exc.status)
        return log_csv_response(state, flt, visitor_language(request))

    @ui.page("/admin/logs", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def logs_page() -> None:
        async with admin_frame(state, "admin.nav.logs", "/admin/logs") as content:
            if content is None:
                return
            form: dict[str, str | None] = {
                "start": None,
                "end": None,
                "user": None,
                "ip": None,
                "model": None,
                "status": None,
                "channel": None,
            }
            view = LogView()

            def pickers() -> tuple[list[str], dict[str, str]]:
                with Session(state.engine) as session:
                    models = log_queries.known_models(session=session)
                    named = {
                        str(ident): f"{name} (#{ident})"
                        for ident, name in channels.channel_names(session=session).items()
                    }
                return models, named

            known_models, known_channels = await off_loop(pickers)

            page_heading("logs")
            with ui.card().classes("w-full"), ui.row().classes("w-full items-end gap-3"):
                start, end = date_range("f")
                user = ui.input(t("admin.logs.user")).props("dense outlined clearable").mark("f-user")
                ip = ui.input("IP").props("dense outlined clearable").mark("f-ip")
                model = (
                    ui.select(
                        {"": t("admin.logs.all_models"), **{m: m for m in known_models}},
                        value="",
                        label=t("admin.logs.model"),
                        with_input=True,
                    )
                    .props("dense outlined")
                    .classes("min-w-[150px]")
                    .mark("f-model")
                )
                channel = (
                    ui.select(
                        {"": t("admin.logs.all_channels"), **known_channels},
                        value="",
                        label=t("admin.logs.channel"),
                        with_input=True,
                    )
                    .props("dense outlined")
                    .classes("min-w-[150px]")
                    .mark("f-channel")
                )
                status = (
                    ui.select(
                        {"": t("admin.audit.all"), **{code: t(key) for code, key in STATUS_LABELS.items()}},
                        value="",
                        label=t("admin.logs.status_label"),
                    )
                    .props("dense outlined")
                    .classes("min-w-[110px]")
                    .mark("f-status")
                )
                query_buttons("f", lambda: apply(), lambda: reset())
                ui.space()
                ui.button(t("admin.logs.export"), icon="download", on_click=lambda: export()).props(
                    "outline"
                ).mark("export")
            error = FormError("f-error")
            summary = ui.label("").classes("text-sm text-gray-500").mark("summary")
            with ui.card().classes("w-full p-0 table-scroll"):
                table = (
                    ui.table(
                        columns=[{**c, "label": t(f"admin.logs.col.{c['name']}")} for c in COLUMNS],
                        rows=[],
                        row_key="id",
                        pagination=_table_pagination(view.sort, 0),
                    )
                    .classes("w-full")
                    .props("flat dense hide-pagination")
                )
            table.mark("log-table")
            table.add_slot("body-cell-user", FILTER_CELL.format(event="filter_user"))
            table.add_slot("body-cell-ip", FILTER_CELL.format(event="filter_ip"))
            table.on("filter_user", lambda e: filter_by(user, e.args.get("user_key")))
            table.on("filter_ip", lambda e: filter_by(ip, e.args.get("ip")))
            with ui.row().classes("w-full items-center gap-3"):
                pager = (
                    ui.pagination(1, 1, direction_links=True, on_change=lambda e: load(e.value))
                    .props("max-pages=7 boundary-numbers")
                    .mark("pager")
                )
                ui.space()
                sort_select = (
                    ui.select(
                        {code: t(key) for code, key in SORTS.items()},
                        value=view.sort,
                        label=t("admin.users.sort"),
                        on_change=lambda e: resort(e.value),
                    )
                    .props("dense outlined")
                    .classes("min-w-[150px]")
                    .mark("log-sort")
                )

                ui.select(
                    {n: t("admin.logs.per_page", count=n) for n in PAGE_SIZES},
                    value=view.page_size,
                    on_change=lambda e: resize(e.value),
                ).props("dense outlined").mark("log-page-size")

            def header_sort(event: events.GenericEventArguments) -> None:
                asked = event.args.get("pagination") or {}
                key = HEADER_SORTS.get(str(asked.get("sortBy") or ""))
                # Quasar cycles a header: ascending, descending, off (back to the default: newest first)
                sort_select.value = (
                    f"{'-' if asked.get('descending') else ''}{key}" if key else log_queries.DEFAULT_LOG_SORT
                )

            table.on("request", header_sort, [["pagination"]])

            async def filter_by(field: ui.input, value: str | None) -> None:
                if value:
                    field.value = value
                    await apply()

            async def resort(value: str) -> None:
                view.sort = value
                await load(1)

            async def resize(value: int) -> None:
                view.page_size = value
                await load(1)

            def current_filter() -> log_queries.LogFilter | None:
                try:
                    return log_queries.parse_filter(zone=zone, **form)
                except InvalidInput as exc:
                    error.say(exc.text(language()))
                    return None

            async def load(number: int = 1) -> None:
                error.clear()
                flt = current_filter()
                if flt is None:
                    return

                view.loads += 1
                this_load, size, sort = view.loads, view.page_size, view.sort

                words = language()  # read here: the query runs on a thread, outside the page's context

                def query() -> log_queries.LogPage:
                    with Session(state.engine) as session:
                        return log_queries.list_logs(
                            session=session, flt=flt, page=number, page_size=size, sort=sort, language=words
                        )

                result = await off_loop(query)
                if (
                    this_load != view.loads
                ):  # a later load (another sort, filter or page) has started: it wins
                    return
                table.rows = [
                    {
                        "id": item["id"],
                        "time": item["created_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                        "ip": item["ip_address"],
                        "user": item["username"] or t("admin.logs.guest"),
                        # what the user filter takes: the e-mail, the id of a deleted user, or guest
                        "user_key": str(item["user_id"])
                        if item["user_deleted"]
                        else item["username"] or (str(item["user_id"]) if item["user_id"] else "guest"),
                        "model": item["model_id"],
                        "channel": item["channel_name"]
                        or (f"#{item['channel_id']}" if item["channel_id"] else "—"),
                        "status": t(STATUS_LABELS[item["status"]])
                        if item["status"] in STATUS_LABELS
                        else item["status"],
                        "error": _reason(item["error"]),
                        "prompt": _tokens(item["prompt_tokens"], item["tokens_estimated"]),
                        "completion": _tokens(item["completion_tokens"], item["tokens_estimated"]),
                        "duration": item["duration_ms"],
                    }
                    for item in result.items
                ]
                pages = max(1, -(-result.total // size))
                table.pagination = _table_pagination(sort, result.total)
                pager.max = pages
                pager.set_value(number)
                summary.text = t(
                    "admin.logs.total_more" if result.total_capped else "admin.logs.total",
                    count=f"{result.total:,}",
                    page=number,
                    pages=pages,
                )

            async def apply() -> None:
                form.update(
                    start=start.value or None,
                    end=end.value or None,
                    user=user.value or None,
                    ip=ip.value or None,
                    model=model.value or None,
                    status=status.value or None,
                    channel=channel.value or None,
                )
                await load(1)

            async def reset() -> None:
                for field in (start, end, user, ip, model, channel):
                    field.value = ""
                status.value = ""
                await apply()

            def export() -> None:
                if current_filter() is None:
                    return
                query = urlencode({key: value for key, value in form.items() if value})
                ui.download(f"/admin/logs/export.csv{'?' + query if query else ''}")

            await load(1)
