"""The executive dashboard's numbers from day buckets, and the windows it covers (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from shared.dates import RangeTooLarge
from shared.errors import BadRequest
from stats.dashboard import AgentRecord, dashboard, first_day_read, history_days
from stats.forecast import HISTORY_DAYS
from stats.window import Window, elapsed_share, summed_to_same_point, window_of

D = Decimal
UTC_ZONE = ZoneInfo("UTC")
WINDOW = Window.ending(date(2026, 11, 10), 7)  # 4..10 Nov, over; previous 28 Oct..3 Nov
NOW = datetime(2026, 11, 10, 18, 0, tzinfo=UTC_ZONE)  # three quarters of 10 Nov gone by


def test_windows_cover_equal_lengths_back_to_back() -> None:
    assert (WINDOW.days[0], WINDOW.days[-1]) == ("2026-11-04", "2026-11-10")
    previous = WINDOW.previous()
    assert (previous.first.isoformat(), previous.last.isoformat()) == ("2026-10-28", "2026-11-03")
    assert not WINDOW.partial
    assert WINDOW.last_complete_day() == date(2026, 11, 10)


def test_a_window_ending_today_is_partial_and_its_previous_one_stops_at_the_same_point() -> None:
    window = window_of("7d", None, None, NOW)
    assert (window.first, window.last, window.elapsed) == (date(2026, 11, 4), date(2026, 11, 10), D("0.75"))
    assert window.partial
    assert window.last_complete_day() == date(2026, 11, 9)
    assert window.previous().elapsed == D("0.75")


def test_elapsed_is_the_share_of_the_real_day_gone_by() -> None:
    assert elapsed_share(datetime(2026, 12, 1, 0, 30, tzinfo=UTC_ZONE)) == D("0.0208")
    assert elapsed_share(datetime(2026, 12, 1, 0, 0, tzinfo=UTC_ZONE)) == 0
    assert elapsed_share(datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC_ZONE)) == D("0.9999")
    # 8 March 2026 in New York has 23 hours: noon is 11 of them
    new_york = ZoneInfo("America/New_York")
    assert elapsed_share(datetime(2026, 3, 8, 12, 0, tzinfo=new_york)) == (D(11) / 23).quantize(D("0.0001"))


def test_from_and_to_choose_any_range_up_to_today() -> None:
    window = window_of(None, date(2026, 11, 1), date(2026, 11, 5), NOW)
    assert (window.first, window.last, window.partial) == (date(2026, 11, 1), date(2026, 11, 5), False)
    only_to = window_of(None, None, date(2026, 11, 5), NOW)
    assert (only_to.first, only_to.last) == (date(2026, 10, 7), date(2026, 11, 5))
    only_from = window_of(None, date(2026, 11, 8), None, NOW)
    assert (only_from.first, only_from.last, only_from.partial) == (
        date(2026, 11, 8),
        date(2026, 11, 10),
        True,
    )
    default = window_of(None, None, None, NOW)
    assert (default.first, default.length) == (date(2026, 10, 12), 30)
    assert window_of(None, date(2026, 11, 10), date(2026, 11, 10), NOW).length == 1


@pytest.mark.parametrize(
    ("period", "first", "last", "error", "field"),
    [
        ("7d", date(2026, 11, 1), None, BadRequest, "period"),
        ("30d", None, date(2026, 11, 1), BadRequest, "period"),
        (None, None, date(2026, 11, 11), BadRequest, "to"),
        (None, date(2026, 11, 11), None, BadRequest, "from"),  # after 'to', today
        (None, date(2026, 11, 5), date(2026, 11, 1), BadRequest, "from"),
        (None, date(2025, 10, 5), date(2026, 11, 9), RangeTooLarge, "from"),  # 400 days and one
    ],
)
def test_bad_windows_are_400s_naming_the_field(
    period: str | None, first: date | None, last: date | None, error: type[BadRequest], field: str
) -> None:
    with pytest.raises(error) as raised:
        window_of(period, first, last, NOW)
    assert raised.value.status == 400
    assert raised.value.details[0]["field"] == field


def test_400_days_is_the_longest_range() -> None:
    assert window_of(None, date(2025, 10, 6), date(2026, 11, 9), NOW).length == 400


def test_the_previous_window_counts_its_last_day_for_the_share_of_today_gone_by() -> None:
    # Given 10 leads and $100 on each day of the previous week, and today a quarter gone by
    window = Window.ending(date(2026, 11, 10), 7, D("0.25"))
    buckets = {day: {"leads": D(10), "revenue": D(100)} for day in window.previous().days}
    # When it is summed to the same point
    before = summed_to_same_point(buckets, window.previous())
    # Then six full days and a quarter of the seventh count
    assert before == {"leads": D("62.50"), "revenue": D("625.00")}


def test_change_compares_like_for_like_when_the_window_ends_today() -> None:
    # Given $100 of leads a day last week, and this week $100 a day plus $30 so far today, a
    # quarter of the way through it
    window = Window.ending(date(2026, 11, 10), 7, D("0.25"))
    buckets = {day: {"leads": D(4), "revenue": D(100)} for day in window.previous().days + window.days[:-1]}
    buckets[window.days[-1]] = {"leads": D(1), "revenue": D(30)}
    # When
    stats = dashboard(buckets, window, [])
    # Then the week is compared with 6.25 days of the last one: 630 against 625
    assert stats.revenue.total == D("630.00")
    assert stats.revenue.change == D("0.8")
    assert (stats.period.partial, stats.period.elapsed) == (True, D("0.25"))
    # And a whole previous week would have read as a fall of 10 %
    over = dashboard(buckets, Window.ending(date(2026, 11, 10), 7), [])
    assert over.revenue.change == D("-10.0")


def test_dashboard_uses_the_cohort_rate_and_counts_closes_separately() -> None:
    # Given two leads this window (one of them closed), and three leads of an older window closed in it
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
            "won": D(1),
            "d#new": D(1),
            "d#closed": D(1),
            "c#tiktok#leads": D(2),
            "c#tiktok#revenue": D(80),
            "c#tiktok#won": D(1),
            "a#agent-1#leads": D(1),
            "a#agent-1#won": D(1),
        },
        "2026-11-08": {
            "conversions": D(4),
            "closed_days": D("12.000"),
            "sales": D(900),
            "c#tiktok#conversions": D(1),
            "c#tiktok#sales": D(900),
            "c#google#conversions": D(3),
            "a#agent-1#conversions": D(1),
            "a#agent-1#sales": D(900),
            "a#agent-2#conversions": D(3),
        },
    }
    agents = [
        AgentRecord("agent-1", "Ann", "online", 3, 10),
        AgentRecord("agent-2", "Bo", "busy", 1, 10),
        AgentRecord("agent-3", "Cy", "offline", 0, 10),
    ]
    # When
    stats = dashboard(buckets, WINDOW, agents)
    # Then
    assert stats.revenue.total == D("80.00")
    assert stats.revenue.change == D("60.0")
    assert len(stats.revenue.trend) == 7
    assert stats.revenue.trend[1].revenue == D("80.00")
    assert stats.sales.total == D("900.00")
    assert stats.sales.returnOnSpend == D("11.25")  # 900 / 80
    assert stats.sales.change is None  # no sales last window
    assert stats.cpa.average == D("20.00")  # 80 / 4 conversions
    assert stats.cpa.change is None
    tiktok, google = stats.cpa.breakdown
    assert (tiktok.campaign, tiktok.cpa, tiktok.conversionRate, tiktok.returnOnSpend) == (
        "tiktok",
        D("80.00"),
        D("50.0"),
        D("11.25"),
    )
    # a campaign with closes but no leads in the window: no rate, no spend-based ratio, CPA of $0 spend
    assert (google.campaign, google.leads, google.conversionRate, google.returnOnSpend) == (
        "google",
        0,
        None,
        None,
    )
    assert stats.agents.total == 3
    assert stats.agents.online == 1
    assert stats.agents.utilization == D("20.0")  # 4 open of 20 capacity (online and busy)
    assert [p.agent for p in stats.agents.topPerformers] == ["agent-2", "agent-1"]
    assert stats.agents.topPerformers[0].conversionRate is None  # closes, but no leads in the window
    assert stats.agents.topPerformers[1].conversionRate == D("100.0")
    assert stats.conversion.leads == 2
    assert stats.conversion.converted == 1
    assert stats.conversion.conversions == 4  # more closes than leads...
    assert stats.conversion.rate == D("50.0")  # ...and the rate stays the cohort's
    assert stats.conversion.funnel.model_dump() == {
        "new": 1,
        "contacted": 0,
        "qualified": 0,
        "closed": 1,
        "lost": 0,
    }
    assert stats.conversion.velocity == D("3.0")


def test_an_empty_window_has_zeros_and_nulls_for_every_rate() -> None:
    stats = dashboard({}, WINDOW, [])
    assert stats.revenue.total == 0
    assert stats.revenue.change is None
    assert stats.sales.returnOnSpend is None
    assert stats.cpa.average is None
    assert stats.conversion.rate is None
    assert stats.conversion.velocity is None
    assert stats.agents.utilization is None  # no capacity


def test_the_forecast_reads_complete_days_only_and_states_its_range() -> None:
    # Given $10 on each of the history's days, and $1,000 so far today
    window = Window.ending(date(2026, 11, 10), 7, D("0.5"))
    days = history_days(window)
    assert len(days) == HISTORY_DAYS
    assert days[-1] == "2026-11-09"
    assert first_day_read(window) == (date(2026, 11, 9) - timedelta(days=HISTORY_DAYS - 1)).isoformat()
    buckets = {day: {"revenue": D(10)} for day in days}
    buckets["2026-11-10"] = {"revenue": D(1000)}
    # When
    revenue = dashboard(buckets, window, []).revenue
    # Then today's partial spend does not pull the projection: a level $10 a day over 7 days
    assert revenue.forecast == D("70.00")
    assert revenue.forecastRange.low <= revenue.forecast <= revenue.forecastRange.high
    assert revenue.forecastRange.method


def test_credits_of_approved_returns_make_cpa_and_return_on_spend_net() -> None:
    # Given 80.00 of leads this window, one of them (30.00, tiktok) returned and credited
    buckets = {
        "2026-11-05": {
            "leads": D(2),
            "revenue": D(80),
            "returns": D(1),
            "credits": D(30),
            "c#tiktok#leads": D(2),
            "c#tiktok#revenue": D(80),
            "c#tiktok#returns": D(1),
            "c#tiktok#credits": D(30),
        },
        "2026-11-08": {
            "conversions": D(2),
            "sales": D(500),
            "c#tiktok#conversions": D(2),
            "c#tiktok#sales": D(500),
        },
    }
    # When
    stats = dashboard(buckets, WINDOW, [])
    # Then spend is what was bought, and every ratio divides what it cost net of the credit
    assert (stats.revenue.total, stats.revenue.returns, stats.revenue.credits, stats.revenue.netSpend) == (
        D("80.00"),
        1,
        D("30.00"),
        D("50.00"),
    )
    assert stats.cpa.average == D("25.00")  # 50 / 2
    assert stats.sales.returnOnSpend == D("10.00")  # 500 / 50
    (tiktok,) = stats.cpa.breakdown
    assert (tiktok.revenue, tiktok.credits, tiktok.netSpend, tiktok.cpa) == (
        D("80.00"),
        D("30.00"),
        D("50.00"),
        D("25.00"),
    )
