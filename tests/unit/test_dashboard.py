"""The executive dashboard's numbers from day buckets (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from stats.dashboard import AgentRecord, Period, dashboard, least_squares_forecast, percent_change

D = Decimal
PERIOD = Period.ending(date(2026, 11, 10), 7)  # 4..10 Nov; previous 28 Oct..3 Nov


def test_periods_cover_equal_lengths_back_to_back() -> None:
    assert PERIOD.days[0] == "2026-11-04"
    assert PERIOD.days[-1] == "2026-11-10"
    previous = PERIOD.previous()
    assert (previous.first.isoformat(), previous.last.isoformat()) == ("2026-10-28", "2026-11-03")


def test_dashboard_sums_the_period_and_compares_with_the_previous_one() -> None:
    # Given two leads this period (one closed) and one last period
    buckets = {
        "2026-10-30": {
            "leads": D(1),
            "revenue": D(50),
            "d#new": D(1),
            "c#tiktok#leads": D(1),
            "c#tiktok#revenue": D(50),
        },
        "2026-11-05": {
            "leads": D(2),
            "revenue": D(80),
            "d#new": D(1),
            "d#closed": D(1),
            "quality_sum": D(14),
            "c#tiktok#leads": D(2),
            "c#tiktok#revenue": D(80),
            "a#agent-1#leads": D(1),
        },
        "2026-11-08": {
            "conversions": D(1),
            "closed_days": D("3.000"),
            "sales": D(900),
            "c#tiktok#conversions": D(1),
            "a#agent-1#conversions": D(1),
            "a#agent-1#sales": D(900),
        },
    }
    agents = [
        AgentRecord("agent-1", "Ann", "online", 3, 10),
        AgentRecord("agent-2", "Bo", "busy", 1, 10),
        AgentRecord("agent-3", "Cy", "offline", 0, 10),
    ]
    # When
    stats = dashboard(buckets, PERIOD, agents)
    # Then
    assert stats.revenue.total == D("80.00")
    assert stats.revenue.change == D("60.0")
    assert len(stats.revenue.trend) == 7
    assert stats.revenue.trend[1].revenue == D("80.00")
    assert stats.cpa.average == D("80.00")
    assert stats.cpa.change is None  # no conversions last period
    assert stats.cpa.breakdown[0].campaign == "tiktok"
    assert stats.cpa.breakdown[0].cpa == D("80.00")
    assert stats.agents.total == 3
    assert stats.agents.online == 1
    assert stats.agents.utilization == D("20.0")  # 4 open of 20 capacity (online and busy)
    assert [p.agent for p in stats.agents.topPerformers] == ["agent-1"]
    assert stats.conversion.rate == D("50.0")
    assert stats.conversion.funnel.model_dump() == {
        "new": 1,
        "contacted": 0,
        "qualified": 0,
        "closed": 1,
        "lost": 0,
    }
    assert stats.conversion.velocity == D("3.0")


def test_an_empty_period_has_zeros_and_no_changes() -> None:
    stats = dashboard({}, PERIOD, [])
    assert stats.revenue.total == 0
    assert stats.revenue.change is None
    assert stats.cpa.average is None
    assert stats.conversion.velocity is None
    assert stats.agents.utilization == 0


def test_forecast_extends_the_least_squares_line() -> None:
    # 10, 20, 30 → next three days 40 + 50 + 60
    assert least_squares_forecast([D(10), D(20), D(30)], 3) == D("150.00")
    assert least_squares_forecast([D(30), D(20), D(10)], 5) == D("0.00")  # never below zero
    assert least_squares_forecast([], 7) == D(0)


def test_percent_change_is_null_without_a_base() -> None:
    assert percent_change(D(150), D(100)) == D("50.0")
    assert percent_change(D(10), D(0)) is None
    assert percent_change(None, D(5)) is None
