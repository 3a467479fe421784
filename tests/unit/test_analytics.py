"""Analytics series and insights from day buckets (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from shared.buckets import Buckets
from stats.analytics import analytics, first_day_read, label_of, same_point_before
from stats.window import Window, window_of

D = Decimal
TODAY = date(2026, 11, 10)
OVER = datetime(2026, 11, 11, 0, 0, tzinfo=ZoneInfo("UTC"))  # the windows below end the day before


def ended(period: str) -> Window:
    """A named period ending `TODAY`, once `TODAY` is over."""
    return window_of(None, *_span(period), OVER)


def _span(period: str) -> tuple[date, date]:
    days = {"7d": 7, "30d": 30, "90d": 90, "12m": 365}[period]
    return TODAY - timedelta(days=days - 1), TODAY


@pytest.mark.parametrize(
    ("period", "granularity", "count", "first", "last"),
    [
        ("7d", "day", 7, "2026-11-04", "2026-11-10"),
        ("30d", "day", 30, "2026-10-12", "2026-11-10"),
        ("90d", "week", 14, "2026-W33", "2026-W46"),
        ("12m", "month", 13, "2025-11", "2026-11"),
    ],
)
def test_each_period_has_its_granularity(
    period: str, granularity: str, count: int, first: str, last: str
) -> None:
    result = analytics({}, ended(period), period)
    assert result.granularity == granularity
    assert len(result.labels) == count
    assert (result.labels[0], result.labels[-1]) == (first, last)
    assert (
        len(result.leads)
        == len(result.revenue)
        == len(result.conversions)
        == len(result.sales)
        == len(result.converted)
        == len(result.partial)
        == count
    )


@pytest.mark.parametrize(
    ("days", "granularity"),
    [(1, "day"), (31, "day"), (32, "week"), (180, "week"), (181, "month"), (400, "month")],
)
def test_a_from_to_range_is_shown_by_its_length(days: int, granularity: str) -> None:
    window = Window.ending(TODAY, days)
    assert analytics({}, window).granularity == granularity
    assert analytics({}, window).period is None


def test_weeks_and_months_sum_their_days_and_a_cut_one_is_partial() -> None:
    buckets = {
        "2026-11-02": {"leads": D(2), "revenue": D(70)},
        "2026-11-08": {
            "leads": D(1),
            "revenue": D(40),
            "conversions": D(1),
            "sales": D(500),
        },  # same ISO week (W45)
        "2026-11-09": {"leads": D(1), "revenue": D(35), "won": D(1)},  # W46
    }
    weekly = analytics(buckets, ended("90d"), "90d")
    assert weekly.leads[weekly.labels.index("2026-W45")] == 3
    assert weekly.revenue[weekly.labels.index("2026-W45")] == D("110.00")
    assert weekly.sales[weekly.labels.index("2026-W45")] == D("500.00")
    # 90 days from Thursday 13 Aug: the first week and the last (Mon 9 to Tue 10 Nov) are cut
    assert weekly.partial == [True] + [False] * 12 + [True]
    monthly = analytics(buckets, ended("12m"), "12m")
    assert monthly.leads[-1] == 4
    assert monthly.conversions[-1] == 1
    assert monthly.converted[-1] == 1
    assert (monthly.partial[0], monthly.partial[-1]) == (True, True)  # from 11 Nov 2025; to 10 Nov 2026
    assert label_of("2026-01-01", "week") == "2026-W01"


def test_insights_state_what_the_numbers_show() -> None:
    buckets = {
        "2026-11-08": {"leads": D(1), "revenue": D(40), "c#tiktok#revenue": D(40), "c#tiktok#leads": D(1)},
        "2026-11-09": {
            "leads": D(3),
            "revenue": D(120),
            "won": D(1),
            "c#google#revenue": D(120),
            "c#google#leads": D(3),
        },
        "2026-11-10": {"conversions": D(2), "sales": D(1500)},
    }
    said = analytics(buckets, ended("7d"), "7d").insights
    assert said[0] == "Best day: 2026-11-09 with $120.00 revenue from 3 leads."
    assert any(line.startswith("Weakest day: 2026-11-") for line in said)
    assert "Largest change: revenue fell 100% from 2026-11-09 to 2026-11-10." in said
    assert "Top source: campaign google with $120.00 revenue (75% of the total)." in said
    assert (
        said[-1]
        == "1 of the 4 leads received closed by now (25.0%); 2 sales closed in the period ($1,500.00)."
    )


def test_an_empty_period_says_so() -> None:
    assert analytics({}, ended("7d"), "7d").insights == [
        "No leads were received between 2026-11-04 and 2026-11-10."
    ]


def busy_months(first_of_month: date) -> Buckets:
    """Every day before `first_of_month` for a year busy; 1 lead so far on the first."""
    buckets: Buckets = {
        (first_of_month - timedelta(days=n)).isoformat(): {
            "leads": D(5),
            "revenue": D(200),
            "c#x#revenue": D(200),
        }
        for n in range(1, 400)
    }
    buckets[first_of_month.isoformat()] = {"leads": D(1), "revenue": D(35)}
    return buckets


@pytest.mark.parametrize("first_of_month", [date(2026, 12, 1), date(2026, 3, 1), date(2027, 1, 1)])
@pytest.mark.parametrize("period", ["7d", "30d", "90d", "12m"])
def test_on_the_first_of_a_month_no_insight_calls_the_month_weak_or_falling(
    first_of_month: date, period: str
) -> None:
    # Given busy months, and half an hour into the first of the next one
    now = datetime.combine(first_of_month, datetime.min.time(), ZoneInfo("UTC")) + timedelta(minutes=30)
    window = window_of(period, None, None, now)
    # When
    result = analytics(busy_months(first_of_month), window, period)
    # Then the bucket holding today is partial, never ranked nor said to have fallen
    assert result.partial[-1]
    current = result.labels[-1]
    for line in result.insights:
        assert current not in line or "so far" in line, line
        assert not (line.startswith("Weakest") and current in line)
    assert not any(f"to {current}" in line for line in result.insights)
    # And it is compared with the same point of the bucket before: its days so far (the week's
    # earlier days for weeks) against as many days of the one before, with half an hour (0.0208)
    # of a $200 day for today's
    days_before = first_of_month.weekday() if result.granularity == "week" else 0
    so_far = f"{current} so far: ${200 * days_before + 35:,}.00 revenue from {5 * days_before + 1} lead"
    against = f"against ${200 * days_before + D('4.16'):,} by the same point of {result.labels[-2]}."
    assert [line for line in result.insights if "so far" in line] == [
        f"{so_far}{'s' if days_before else ''}, {against}"
    ]


def test_the_same_point_of_the_previous_month_week_and_day() -> None:
    window = Window.ending(date(2026, 12, 10), 30, D("0.5"))
    month = same_point_before(window, "month")
    assert (month.first, month.last, month.elapsed) == (date(2026, 11, 1), date(2026, 11, 10), D("0.5"))
    week = same_point_before(window, "week")  # Thursday 10 Dec: Monday 30 Nov to Thursday 3 Dec
    assert (week.first, week.last, week.elapsed) == (date(2026, 11, 30), date(2026, 12, 3), D("0.5"))
    day = same_point_before(window, "day")
    assert (day.first, day.last, day.elapsed) == (date(2026, 12, 9), date(2026, 12, 9), D("0.5"))
    # 31 March against a shorter February: the whole of it
    march = same_point_before(Window.ending(date(2026, 3, 31), 365, D("0.5")), "month")
    assert (march.first, march.last, march.elapsed) == (date(2026, 2, 1), date(2026, 2, 28), D(1))
    assert first_day_read(Window.ending(date(2026, 12, 1), 7, D("0.1")), "month") == "2026-11-01"


def test_month_to_date_is_compared_with_the_same_days_of_last_month() -> None:
    # Given $100 a day in November and $150 a day so far in December, half way through the 10th
    buckets: Buckets = {f"2026-11-{n:02d}": {"leads": D(1), "revenue": D(100)} for n in range(1, 31)}
    buckets.update({f"2026-12-{n:02d}": {"leads": D(1), "revenue": D(150)} for n in range(1, 11)})
    window = Window.ending(date(2026, 12, 10), 365, D("0.5"))
    said = analytics(buckets, window, "12m").insights
    assert (
        "2026-12 so far: $1,500.00 revenue from 10 leads, against $950.00 by the same point of 2026-11."
        in said
    )
    assert not any(
        "fell" in line or "rose" in line for line in said
    )  # November is the only complete month with leads


def test_one_vendors_series_reads_its_own_counters() -> None:
    buckets = {
        "2026-11-09": {
            "v#V001#leads": D(2),
            "v#V001#revenue": D(80),
            "v#V001#won": D(1),
            "vc#V001#tiktok#revenue": D(80),
            "v#V002#leads": D(5),
            "v#V002#revenue": D(250),
        }
    }
    result = analytics(buckets, ended("7d"), "7d", vendor="V001")
    assert result.vendor == "V001"
    assert sum(result.leads) == 2
    assert sum(result.revenue) == D("80.00")
    assert sum(result.converted) == 1
    assert "Top source: campaign tiktok with $80.00 revenue (100% of the total)." in result.insights
    nobody = analytics(buckets, ended("7d"), "7d", vendor="V999")
    assert nobody.insights == ["No leads were received from V999 between 2026-11-04 and 2026-11-10."]
