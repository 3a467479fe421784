"""Analytics series and insights from day buckets (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from stats.analytics import analytics, label_of

D = Decimal
TODAY = date(2026, 11, 10)


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
    result = analytics({}, period, TODAY)
    assert result.granularity == granularity
    assert len(result.labels) == count
    assert (result.labels[0], result.labels[-1]) == (first, last)
    assert len(result.leads) == len(result.revenue) == len(result.conversions) == count


def test_weeks_and_months_sum_their_days() -> None:
    buckets = {
        "2026-11-02": {"leads": D(2), "revenue": D(70)},
        "2026-11-08": {"leads": D(1), "revenue": D(40), "conversions": D(1)},  # same ISO week (W45)
        "2026-11-09": {"leads": D(1), "revenue": D(35)},  # W46
    }
    weekly = analytics(buckets, "90d", TODAY)
    assert weekly.leads[weekly.labels.index("2026-W45")] == 3
    assert weekly.revenue[weekly.labels.index("2026-W45")] == D("110.00")
    monthly = analytics(buckets, "12m", TODAY)
    assert monthly.leads[-1] == 4
    assert monthly.conversions[-1] == 1
    assert label_of("2026-01-01", "week") == "2026-W01"


def test_insights_state_what_the_numbers_show() -> None:
    buckets = {
        "2026-11-08": {"leads": D(1), "revenue": D(40), "c#tiktok#revenue": D(40), "c#tiktok#leads": D(1)},
        "2026-11-09": {
            "leads": D(3),
            "revenue": D(120),
            "conversions": D(1),
            "c#google#revenue": D(120),
            "c#google#leads": D(3),
        },
    }
    said = analytics(buckets, "7d", TODAY).insights
    assert said[0] == "Best day: 2026-11-09 with $120.00 revenue from 3 leads."
    assert any(line.startswith("Weakest day: 2026-11-") for line in said)
    assert "Largest change: revenue fell 100% from 2026-11-09 to 2026-11-10." in said
    assert "Top source: campaign google with $120.00 revenue (75% of the total)." in said
    assert said[-1] == "1 sale closed against 4 leads received (25.0%)."


def test_an_empty_period_says_so() -> None:
    assert analytics({}, "7d", TODAY).insights == [
        "No leads were received between 2026-11-04 and 2026-11-10."
    ]
