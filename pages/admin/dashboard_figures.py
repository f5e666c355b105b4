"""The dashboard's charts as plain plotly figure dicts (no ``plotly.graph_objects``: building those cost
~25 ms each and 300 ms the first time). Each takes the per-day trend (or the models) that
``services.stats.dashboard`` returns and the visitor's language; they run on a worker thread."""

from __future__ import annotations

from typing import Any

from services.i18n import FALLBACK, translate

PALETTE = ["#4f46e5", "#06b6d4", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#64748b"]


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 44, "r": 44, "t": 10, "b": 30},
        "height": 280,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": -0.15},
        "hovermode": "x unified",
        **extra,
    }


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "layout": layout, "config": {"displayModeBar": False, "responsive": True}}


def _count_axis(values: list[int]) -> dict[str, Any]:
    """Whole numbers only, about five ticks (an empty chart shows 0 to 5, not fractions)."""
    step = max(1, -(-max(values, default=0) // 5))
    return {
        "rangemode": "tozero",
        "dtick": step,
        "tickformat": "~s",
        "range": None if max(values, default=0) else [0, 5],
    }


def _days(trend: list[dict[str, Any]]) -> list[str]:
    return [point["date"][5:] for point in trend]


def traffic_figure(trend: list[dict[str, Any]], language: str = FALLBACK) -> dict[str, Any]:
    """Calls (bars) next to tokens (line, its own axis)."""
    x = _days(trend)
    tokens = [point["tokens"]["prompt"] + point["tokens"]["completion"] for point in trend]
    return _figure(
        [
            {
                "type": "bar",
                "name": translate("admin.dash.calls_series", language),
                "x": x,
                "y": [p["calls"] for p in trend],
                "marker": {"color": PALETTE[0]},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Token",
                "x": x,
                "y": tokens,
                "yaxis": "y2",
                "line": {"color": PALETTE[2], "width": 3},
            },
        ],
        _layout(
            yaxis=_count_axis([p["calls"] for p in trend]),
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "tickformat": "~s",
                "showgrid": False,
            },
        ),
    )


def problems_figure(trend: list[dict[str, Any]], language: str = FALLBACK) -> dict[str, Any]:
    """Failed calls, refusals by layer and blocked requests per day (stacked)."""
    x = _days(trend)
    series = [
        ("admin.dash.failed", [p["errors"] for p in trend], PALETTE[4]),
        ("admin.dash.guest_limited", [p["refusals"]["guest"] for p in trend], PALETTE[2]),
        ("admin.dash.user_limited", [p["refusals"]["user"] for p in trend], PALETTE[6]),
        ("admin.dash.channel_busy", [p["refusals"]["channel"] for p in trend], PALETTE[5]),
        ("admin.dash.ip_blocked", [p["blocked_attempts"] for p in trend], PALETTE[7]),
    ]
    return _figure(
        [
            {"type": "bar", "name": translate(name, language), "x": x, "y": y, "marker": {"color": color}}
            for name, y, color in series
        ],
        _layout(
            barmode="stack",
            yaxis=_count_axis([sum(values) for values in zip(*(y for _, y, _ in series), strict=True)]),
        ),
    )


def latency_figure(trend: list[dict[str, Any]], language: str = FALLBACK) -> dict[str, Any]:
    """p50/p95 of the call duration and of the time to first event per day (ms)."""
    x = _days(trend)
    lines = [
        ("admin.dash.duration_p50", "duration_ms", "p50", PALETTE[0], "solid"),
        ("admin.dash.duration_p95", "duration_ms", "p95", PALETTE[0], "dot"),
        ("admin.dash.ttft_p50", "ttft_ms", "p50", PALETTE[3], "solid"),
        ("admin.dash.ttft_p95", "ttft_ms", "p95", PALETTE[3], "dot"),
    ]
    return _figure(
        [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": translate(name, language),
                "x": x,
                "y": [p[metric][which] for p in trend],
                "line": {"color": color, "dash": dash, "width": 2},
                "connectgaps": False,
            }
            for name, metric, which, color, dash in lines
        ],
        _layout(yaxis={"rangemode": "tozero", "ticksuffix": " ms"}),
    )


def pie_figure(models: list[dict[str, Any]], language: str = FALLBACK) -> dict[str, Any]:
    return _figure(
        [
            {
                "type": "pie",
                "labels": [m["model_id"] for m in models] or [translate("admin.dash.no_data", language)],
                "values": [m["calls"] for m in models] or [1],
                "hole": 0.5,
                "marker": {"colors": PALETTE if models else ["#9ca3af"]},
                "textinfo": "percent" if models else "none",
                "hoverinfo": "label+value+percent" if models else "none",
                "sort": False,
            }
        ],
        _layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest"),
    )
