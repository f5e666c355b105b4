"""The dashboard's plotly figure dicts, built without a page: axes, series and the empty cases."""

from __future__ import annotations

from typing import Any

from pages.admin.dashboard_figures import latency_figure, pie_figure, problems_figure, traffic_figure


def day(date: str, calls: int, errors: int = 0) -> dict[str, Any]:
    return {
        "date": date,
        "calls": calls,
        "errors": errors,
        "tokens": {"prompt": 10 * calls, "completion": 5 * calls},
        "refusals": {"guest": 1, "user": 0, "channel": 2},
        "blocked_attempts": 3,
        "duration_ms": {"p50": 100, "p95": None},
        "ttft_ms": {"p50": None, "p95": None},
    }


def test_traffic_shows_calls_and_tokens_per_day_on_whole_number_ticks() -> None:
    figure = traffic_figure([day("2024-05-01", 12), day("2024-05-02", 3)], "en")
    bars, line = figure["data"]
    assert bars["x"] == ["05-01", "05-02"] and bars["y"] == [12, 3]
    assert line["y"] == [180, 45] and line["yaxis"] == "y2"
    assert figure["layout"]["yaxis"]["dtick"] == 3 and figure["layout"]["yaxis"]["range"] is None
    assert figure["config"] == {"displayModeBar": False, "responsive": True}


def test_an_empty_range_shows_zero_to_five_not_fractions() -> None:
    assert traffic_figure([], "en")["layout"]["yaxis"] == {
        "rangemode": "tozero",
        "dtick": 1,
        "tickformat": "~s",
        "range": [0, 5],
    }


def test_problems_are_stacked_and_the_axis_counts_their_sum() -> None:
    figure = problems_figure([day("2024-05-01", 9, errors=4)], "en")
    assert [series["y"] for series in figure["data"]] == [[4], [1], [0], [2], [3]]
    assert figure["layout"]["barmode"] == "stack" and figure["layout"]["yaxis"]["dtick"] == 2


def test_latency_leaves_gaps_for_days_without_calls() -> None:
    figure = latency_figure([day("2024-05-01", 1)], "en")
    assert [series["y"] for series in figure["data"]] == [[100], [None], [None], [None]]
    assert all(series["connectgaps"] is False for series in figure["data"])


def test_a_pie_without_models_is_one_grey_slice_without_text() -> None:
    [empty] = pie_figure([], "en")["data"]
    assert empty["values"] == [1] and empty["marker"]["colors"] == ["#9ca3af"]
    assert empty["textinfo"] == "none"
    [pie] = pie_figure([{"model_id": "m", "calls": 7}], "en")["data"]
    assert pie["labels"] == ["m"] and pie["values"] == [7] and pie["textinfo"] == "percent"
