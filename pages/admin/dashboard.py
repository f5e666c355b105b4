"""``/admin/dashboard``: calls, tokens and active users per period, calls per model, the 7-day trend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import stats

PALETTE = ["#4f46e5", "#06b6d4", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#64748b"]


@dataclass(frozen=True)
class DashboardView:
    numbers: dict[str, Any]  # what ``stats.dashboard`` returns
    pie: dict[str, Any]  # the charts, ready for ui.plotly
    trend: dict[str, Any]


def _load(state: AppState) -> DashboardView:
    """The numbers and the two charts; runs on a worker thread: the queries, and building the plotly
    figures (about 25 ms of CPU per load, some 300 ms the first time, as plotly loads its validators)."""
    with Session(state.engine) as session:
        numbers = stats.dashboard(session=session, zone=state.settings.zone)
    return DashboardView(
        numbers=numbers, pie=_plot(pie_figure(numbers["models"])), trend=_plot(trend_figure(numbers["trend"]))
    )


def _card(title: str, value: int, caption: str, icon: str, marker: str) -> None:
    with ui.card().classes("grow min-w-[150px] gap-1").mark(marker):
        with ui.row().classes("items-center gap-2 text-gray-500"):
            ui.icon(icon)
            ui.label(title).classes("text-sm")
        ui.label(f"{value:,}").classes("text-2xl font-semibold")
        ui.label(caption).classes("text-xs text-gray-400")


def pie_figure(models: list[dict[str, Any]]) -> go.Figure:
    figure = go.Figure(
        go.Pie(
            labels=[m["model_id"] for m in models] or ["暂无数据"],
            values=[m["calls"] for m in models] or [1],
            hole=0.5,
            marker={"colors": PALETTE if models else ["#e5e7eb"]},
            textinfo="percent" if models else "none",
            hoverinfo="label+value+percent" if models else "none",
            sort=False,
        )
    )
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        height=300,
        showlegend=True,
        paper_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h"},
    )
    return figure


def trend_figure(trend: list[dict[str, Any]]) -> go.Figure:
    step = max(1, -(-max((point["calls"] for point in trend), default=0) // 5))  # whole numbers on the axis
    figure = go.Figure(
        go.Scatter(
            x=[point["date"][5:] for point in trend],
            y=[point["calls"] for point in trend],
            mode="lines+markers",
            line={"color": "#4f46e5", "width": 3, "shape": "linear"},
            fill="tozeroy",
            fillcolor="rgba(79,70,229,.12)",
            hovertemplate="%{x}: %{y} 次<extra></extra>",
        )
    )
    figure.update_layout(
        margin={"l": 40, "r": 10, "t": 10, "b": 30},
        height=300,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        yaxis={"rangemode": "tozero", "gridcolor": "rgba(127,127,127,.2)", "tickformat": "d", "dtick": step},
    )
    return figure


def _plot(figure: go.Figure) -> dict[str, Any]:
    return {**figure.to_plotly_json(), "config": {"displayModeBar": False, "responsive": True}}


def _panels(view: DashboardView) -> None:
    data = view.numbers
    calls, tokens, active = data["calls"], data["tokens"], data["active_users"]
    with ui.row().classes("w-full gap-4"):
        _card(
            "今日调用",
            calls["today"],
            f"本周 {calls['week']:,} · 本月 {calls['month']:,}",
            "today",
            "calls-today",
        )
        _card("本周调用", calls["week"], "自周一起", "date_range", "calls-week")
        _card("本月调用", calls["month"], f"时区 {data['time_zone']}", "calendar_month", "calls-month")
        _card(
            "今日活跃用户",
            active["today"],
            f"本周 {active['week']:,} · 本月 {active['month']:,}",
            "group",
            "active-users",
        )
    with ui.row().classes("w-full gap-4"):
        for label, key in (("今日", "today"), ("本周", "week"), ("本月", "month")):
            _card(
                f"{label} Token",
                tokens[key]["prompt"] + tokens[key]["completion"],
                f"提问 {tokens[key]['prompt']:,} · 回答 {tokens[key]['completion']:,}",
                "token",
                f"tokens-{key}",
            )
    with ui.row().classes("w-full gap-4 items-stretch"):
        with ui.card().classes("grow min-w-[280px] basis-[340px]"):
            ui.label("本月各模型调用占比").classes("font-medium")
            ui.plotly(view.pie).classes("w-full").mark("model-pie")
        with ui.card().classes("grow min-w-[280px] basis-[480px]"):
            ui.label("最近 7 天调用趋势").classes("font-medium")
            ui.plotly(view.trend).classes("w-full").mark("trend-line")


def register(state: AppState) -> None:
    @ui.page("/admin/dashboard", title="仪表盘 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def dashboard_page() -> None:
        async with admin_frame(state, "仪表盘", "/admin/dashboard") as content:
            if content is None:
                return

            panels = ui.refreshable(_panels)

            async def refresh() -> None:
                panels.refresh(await off_loop(_load, state))

            with ui.row().classes("w-full items-center"):
                ui.label("概览").classes("text-xl font-semibold")
                ui.space()
                ui.button("刷新", icon="refresh", on_click=refresh).props("flat").mark("refresh")
            panels(await off_loop(_load, state))
