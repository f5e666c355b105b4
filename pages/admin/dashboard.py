"""``/admin/dashboard``: a date range (today, 7 days, 30 days, custom) and, for it, calls, success rate,
tokens, active users, latency, refusals and blocked requests, with trends per day, calls per model and
channel, errors by reason and the top callers. Every figure comes from the rollups (services/stats.py).

The charts are plain plotly figure dicts (``pages/admin/dashboard_figures.py``); NiceGUI loads plotly.js
once, from the app. Their text and grid colours follow the theme through CSS (``body--dark``), so a theme
switch needs no new figures. While the tab is visible the page refreshes every 30 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from nicegui import ui
from sqlmodel import Session

from app.models import utcnow
from app.state import AppState
from pages.admin.dashboard_figures import latency_figure, pie_figure, problems_figure, traffic_figure
from pages.admin.frame import admin_frame
from pages.i18n import language, t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import stats
from services.errors import InvalidInput
from services.i18n import FALLBACK
from services.reasons import in_words

REFRESH_SECONDS = 30.0
_FIELD_PREFIX = re.compile(r"^[a-z_]+(?:\uff1a|: )")  # the API's field name before a message
PRESETS = {
    "today": "admin.dash.preset.today",
    "7d": "admin.dash.preset.7d",
    "30d": "admin.dash.preset.30d",
    "custom": "admin.dash.preset.custom",
}
# failures without a reason code are named by their status (the codes have services/reasons.py's words)
STATUS_WORDS = {
    "all_busy": "admin.dash.status.all_busy",
    "client_aborted": "admin.dash.status.client_aborted",
    "server_shutdown": "admin.dash.status.server_shutdown",
    "upstream_error": "admin.dash.status.upstream_error",
    "timeout": "admin.dash.status.timeout",
}
# plotly writes colours inline; these win in both themes (the slices' own labels keep plotly's choice)
CHART_CSS = """
.dash-chart .infolayer text, .dash-chart .xaxislayer-above text, .dash-chart .yaxislayer-above text,
.dash-chart .overaxes-above text { fill: #374151 !important; }
.dash-chart .gridlayer path, .dash-chart .zerolinelayer path { stroke: rgba(55,65,81,.15) !important; }
.body--dark .dash-chart .infolayer text, .body--dark .dash-chart .xaxislayer-above text,
.body--dark .dash-chart .yaxislayer-above text, .body--dark .dash-chart .overaxes-above text {
  fill: #e5e7eb !important; }
.body--dark .dash-chart .gridlayer path, .body--dark .dash-chart .zerolinelayer path {
  stroke: rgba(229,231,235,.14) !important; }
.body--dark .dash-muted { color: #9ca3af !important; }
"""


@dataclass(frozen=True)
class DashboardView:
    numbers: dict[str, Any]  # what ``stats.dashboard`` returns
    figures: dict[str, dict[str, Any]]  # the charts, ready for ui.plotly


def preset_range(preset: str, today: date) -> tuple[date, date]:
    days = {"today": 1, "7d": 7, "30d": 30}[preset]
    return today - timedelta(days=days - 1), today


def load(state: AppState, start: date, end: date, language: str = FALLBACK) -> DashboardView:
    """The numbers and the charts for ``start``..``end``; runs on a worker thread. A one-day range shows
    the week that ends with it in its charts."""
    trend_start = min(start, end - timedelta(days=6))
    with Session(state.engine) as session:
        numbers = stats.dashboard(
            session=session,
            zone=state.settings.zone,
            start=start,
            end=end,
            trend_start=trend_start,
            caller_sums=state.caller_sums,
            language=language,
        )
    trend = numbers["trend"]
    return DashboardView(
        numbers=numbers,
        figures={
            "traffic": traffic_figure(trend, language),
            "problems": problems_figure(trend, language),
            "latency": latency_figure(trend, language),
            "models": pie_figure(numbers["range"]["models"], language),
        },
    )


def _ms(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value} ms"


def _card(title: str, value: str, caption: str, icon: str, marker: str) -> None:
    with ui.card().classes("grow basis-[140px] min-w-[130px] gap-1").mark(marker):
        with ui.row().classes("items-center gap-2 dash-muted text-gray-600"):
            ui.icon(icon)
            ui.label(title).classes("text-sm")
        ui.label(value).classes("text-2xl font-semibold").mark(f"{marker}-value")
        ui.label(caption).classes("text-xs dash-muted text-gray-600").mark(f"{marker}-caption")


def _table(title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]], marker: str) -> None:
    with ui.card().classes("grow basis-[300px] min-w-0 max-w-full"):
        ui.label(title).classes("font-medium")
        if not rows:
            ui.label(t("admin.dash.no_data")).classes("text-sm dash-muted text-gray-600")
            return
        ui.table(
            columns=[
                {"name": key, "label": t(label), "field": key, "align": "left" if i == 0 else "right"}
                for i, (key, label) in enumerate(columns)
            ],
            rows=rows,
            row_key=columns[0][0],
        ).props("flat dense hide-bottom wrap-cells").classes("w-full overflow-x-auto").mark(marker)


def panels(view: DashboardView) -> None:
    data = view.numbers
    span = data["range"]
    refusals = data["refusals"]
    rate = data["success_rate"]
    with ui.row().classes("w-full gap-4"):
        _card(
            t("admin.dash.calls"), f"{span['calls']:,}", f"{span['start']} ~ {span['end']}", "bolt", "calls"
        )
        _card(
            t("admin.dash.success_rate"),
            "—" if rate is None else f"{rate * 100:.1f}%",
            t("admin.dash.failures", count=f"{sum(data['errors'].values()):,}"),
            "task_alt",
            "success-rate",
        )
        tokens = span["tokens"]
        _card(
            "Token",
            f"{tokens['prompt'] + tokens['completion']:,}",
            t(
                "admin.dash.tokens_split",
                prompt=f"{tokens['prompt']:,}",
                completion=f"{tokens['completion']:,}",
            ),
            "token",
            "tokens",
        )
        _card(
            t("admin.dash.active_users"),
            f"{span['active_users']:,}",
            t("admin.dash.guests_by_ip"),
            "group",
            "active-users",
        )
    with ui.row().classes("w-full gap-4"):
        duration, ttft = data["duration_ms"], data["ttft_ms"]
        _card(
            t("admin.dash.duration_p50"),
            _ms(duration["p50"]),
            f"p95 {_ms(duration['p95'])}",
            "timer",
            "duration",
        )
        _card(t("admin.dash.ttft_p50"), _ms(ttft["p50"]), f"p95 {_ms(ttft['p95'])}", "speed", "ttft")
        _card(
            t("admin.dash.refusals"),
            f"{sum(refusals.values()):,}",
            t(
                "admin.dash.refusals_split",
                guest=f"{refusals['guest']:,}",
                user=f"{refusals['user']:,}",
                channel=f"{refusals['channel']:,}",
            ),
            "block",
            "refusals",
        )
        _card(
            t("admin.dash.ip_blocked"),
            f"{data['blocked_attempts']:,}",
            t("admin.dash.blocked_caption"),
            "shield",
            "blocked",
        )
    with ui.row().classes("w-full gap-4 items-stretch"):
        with ui.card().classes("grow basis-[480px] min-w-0 max-w-full"):
            ui.label(t("admin.dash.traffic")).classes("font-medium")
            ui.plotly(view.figures["traffic"]).classes("w-full dash-chart").mark("chart-traffic")
        with ui.card().classes("grow basis-[300px] min-w-0 max-w-full"):
            ui.label(t("admin.dash.models")).classes("font-medium")
            ui.plotly(view.figures["models"]).classes("w-full dash-chart").mark("chart-models")
    with ui.row().classes("w-full gap-4 items-stretch"):
        with ui.card().classes("grow basis-[400px] min-w-0 max-w-full"):
            ui.label(t("admin.dash.problems")).classes("font-medium")
            ui.plotly(view.figures["problems"]).classes("w-full dash-chart").mark("chart-problems")
        with ui.card().classes("grow basis-[400px] min-w-0 max-w-full"):
            ui.label(t("admin.dash.latency")).classes("font-medium")
            ui.plotly(view.figures["latency"]).classes("w-full dash-chart").mark("chart-latency")
    with ui.row().classes("w-full gap-4 items-stretch"):
        _table(
            t("admin.dash.per_channel"),
            [
                ("name", "admin.dash.col.channel"),
                ("calls", "admin.dash.col.calls"),
                ("errors", "admin.dash.col.errors"),
            ],
            [
                row if row["channel_id"] else {**row, "name": t("admin.dash.no_channel")}
                for row in data["per_channel"]
            ],
            "table-channels",
        )
        _table(
            t("admin.dash.errors"),
            [("reason", "admin.dash.col.reason"), ("calls", "admin.dash.col.count")],
            [
                {
                    "reason": f"{code}: {t(STATUS_WORDS[code])}"
                    if code in STATUS_WORDS
                    else in_words(code, language=language()),
                    "calls": n,
                }
                for code, n in data["errors"].items()
            ],
            "table-errors",
        )
    with ui.row().classes("w-full gap-4 items-stretch"):
        _table(
            t("admin.dash.top_users"),
            [("email", "admin.dash.col.user"), ("calls", "admin.dash.col.calls")],
            [{"email": u["email"] or f"#{u['user_id']}", "calls": u["calls"]} for u in data["top_users"]],
            "table-users",
        )
        _table(
            t("admin.dash.top_ips"),
            [("ip_address", "admin.ip.col.ip"), ("calls", "admin.dash.col.calls")],
            data["top_ips"],
            "table-ips",
        )


class RangePicker:
    """The preset toggle and, for "custom", two date fields checked on the page: a bad date, an end
    before the start or more than 400 days shows its message on the field and loads nothing."""

    def __init__(self, state: AppState, on_range: Any) -> None:
        self.state = state
        self.on_range = on_range
        self.preset = "today"
        with ui.row().classes("items-center gap-2 flex-wrap"):
            self.toggle = ui.toggle(
                {code: t(key) for code, key in PRESETS.items()}, value="today", on_change=self._preset_changed
            ).mark("range-preset")
            with ui.row().classes("items-start gap-2") as self.custom:
                self.start = (
                    ui.input(t("admin.start_date"), placeholder="YYYY-MM-DD")
                    .props("dense outlined")
                    .classes("w-36")
                    .mark("range-start")
                )
                self.end = (
                    ui.input(t("admin.end_date"), placeholder="YYYY-MM-DD")
                    .props("dense outlined")
                    .classes("w-36")
                    .mark("range-end")
                )
                ui.button(t("admin.apply"), on_click=self.apply).props("unelevated").mark("range-apply")
            self.custom.set_visibility(False)

    def today(self) -> date:
        return utcnow().astimezone(self.state.settings.zone).date()

    def current(self) -> tuple[date, date] | None:
        if self.preset != "custom":
            return preset_range(self.preset, self.today())
        return self._custom_range()

    def _custom_range(self) -> tuple[date, date] | None:
        for field in (self.start, self.end):
            field.error = None
        try:
            return stats.parse_range(
                self.start.value or None, self.end.value or None, zone=self.state.settings.zone
            )
        except InvalidInput as exc:
            field = self.start if exc.fields.get("name") == "start" else self.end
            field.error = _FIELD_PREFIX.sub("", exc.text(language()), count=1)
            return None

    async def _preset_changed(self) -> None:
        self.preset = str(self.toggle.value)
        self.custom.set_visibility(self.preset == "custom")
        if self.preset == "custom":
            first, last = preset_range("7d", self.today())
            if not self.start.value:
                self.start.value = first.isoformat()
            if not self.end.value:
                self.end.value = last.isoformat()
            return
        await self.apply()

    async def apply(self) -> None:
        chosen = self.current()
        if chosen is not None:
            await self.on_range(*chosen)


def register(state: AppState) -> None:
    @ui.page("/admin/dashboard", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def dashboard_page() -> None:
        async with admin_frame(state, "admin.nav.dashboard", "/admin/dashboard") as content:
            if content is None:
                return
            ui.add_css(CHART_CSS)
            shown = ui.refreshable(panels)
            picker: RangePicker

            async def show(start: date, end: date) -> None:
                shown.refresh(await off_loop(load, state, start, end, language()))

            async def refresh() -> None:
                chosen = picker.current()
                if chosen is not None:
                    await show(*chosen)

            async def tick() -> None:
                """Every 30 s, while the tab is visible (a hidden tab asks for nothing)."""
                try:
                    visible = await ui.run_javascript("document.visibilityState === 'visible'", timeout=5)
                except TimeoutError:
                    return
                if visible:
                    await refresh()

            with ui.row().classes("w-full items-center gap-2 flex-wrap"):
                ui.label(t("admin.dash.title")).classes("text-xl font-semibold")
                ui.space()
                picker = RangePicker(state, show)
                ui.button(t("admin.refresh"), icon="refresh", on_click=refresh).props("flat").mark("refresh")
            first, last = preset_range("today", picker.today())
            shown(await off_loop(load, state, first, last, language()))
            ui.timer(REFRESH_SECONDS, tick, immediate=False).mark("auto-refresh")
