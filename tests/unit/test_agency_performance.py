"""Agency performance from day buckets: the measures, the grade rules and the insight rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from agencies.performance import Signals, grade, insights, performance

TODAY = date(2026, 11, 15)  # half of November gone: a 600 goal is on pace at 300


def day(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


def D(value: str | int) -> Decimal:
    return Decimal(value)


BUCKETS = {
    # this month: V001 40 leads (tiktok 30, google 10); all agencies 80 leads
    day(0): {
        "leads": D(80),
        "won": D(4),
        "conversions": D(10),
        "v#V001#leads": D(40),
        "v#V001#revenue": D("1600.00"),
        "v#V001#quality_sum": D(320),
        "v#V001#won": D(2),
        "v#V001#conversions": D(6),
        "v#V001#sales": D("3100.00"),
        # V009 closed two leads bought more than 90 days ago, and bought none since
        "v#V009#conversions": D(2),
        "v#V009#sales": D("800.00"),
        "vc#V001#tiktok#leads": D(30),
        "vc#V001#tiktok#revenue": D("1200.00"),
        "vc#V001#tiktok#sales": D("3000.00"),
        "vc#V001#google#leads": D(10),
        "vc#V001#google#revenue": D("400.00"),
        "vc#V001#google#sales": D("100.00"),
    },
    # 40 days ago: V001 20 leads (counts in the 90 days and as the earlier 30 days of the trend)
    day(40): {
        "leads": D(20),
        "won": D(6),
        "v#V001#leads": D(20),
        "v#V001#revenue": D("800.00"),
        "v#V001#quality_sum": D(140),
        "v#V001#won": D(4),
    },
    # 100 days ago: outside every window
    day(100): {"leads": D(999), "v#V001#leads": D(999)},
}


def test_measures_cover_the_documented_windows() -> None:
    block, _ = performance(BUCKETS, "V001", "Summit", 600, TODAY)
    assert block.leads == 60
    assert block.leadsThisMonth == 40
    assert block.goalProgress == D("6.7")
    assert block.revenue == D("2400.00")
    assert block.avgCPA == D("400.00")  # 2400 / 6 conversions
    assert block.converted == 6  # of its 60 leads, closed by now
    assert block.conversionRate == D("10.0")  # the cohort's: 6 / 60
    assert block.sales == D("3100.00")
    assert block.returnOnSpend == D("1.29")  # 3100 / 2400
    assert block.averageQuality == D("7.7")  # 460 / 60
    assert block.topCampaign == "tiktok"
    assert block.campaignROI == D("150.0")  # (3000 - 1200) / 1200
    assert block.trend.direction == "up"
    assert block.trend.change == D("100.0")
    assert len(block.trend.daily) == 30
    assert block.trend.daily[-1] == 40


def test_an_agency_without_leads_has_no_grade_and_says_so() -> None:
    block, found = performance(BUCKETS, "V404", "Quiet Co", 600, TODAY)
    assert block.leads == 0
    assert block.grade is None
    assert block.avgCPA is None
    assert block.conversionRate is None
    assert block.topCampaign is None
    assert found.opportunities == ["No leads from Quiet Co in the last 90 days."]


def test_conversions_of_older_leads_make_no_rate_and_no_cpa_without_new_leads() -> None:
    block, _ = performance(BUCKETS, "V009", "Late Co", 600, TODAY)
    assert (block.leads, block.converted, block.sales) == (0, 0, D("800.00"))
    assert (block.conversionRate, block.avgCPA, block.returnOnSpend, block.grade) == (None, None, None, None)


def test_the_grade_rates_conversion_against_every_agency_s_cohort() -> None:
    # V001's cohort converted 10 % (6 of 60), all agencies' 10 % (10 of 100): one point for
    # conversion, none for pace (40 of 300), two for quality (7.7)
    assert performance(BUCKETS, "V001", "Summit", 600, TODAY)[0].grade == "C"
    # 900 more leads of other agencies, none closed yet: all agencies convert 1 %, V001 ten times that
    others = {**BUCKETS, day(1): {"leads": D(900)}}
    block, said = performance(others, "V001", "Summit", 600, TODAY)
    assert block.grade == "B"
    assert "Converts 10.0% of its leads, above the 1.0% of all agencies." in said.strengths


BASE = Signals(
    leads=100,
    month_leads=300,
    conversion_rate=D("0.10"),
    overall_rate=D("0.10"),
    pace=D("1.0"),
    average_quality=D(6),
    trend_change=None,
    top_campaign="tiktok",
    top_campaign_roi=None,
    weakest_campaign=None,
    weakest_campaign_roi=None,
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # conversion (2 at >= 1.1x the overall rate, 1 at >= 0.9x), pace (2 at >= 1, 1 at >= 0.75),
        # quality (2 at >= 7, 1 at >= 5): 5-6 A, 4 B, 3 C, 2 D, 0-1 F
        pytest.param({"conversion_rate": D("0.11"), "average_quality": D(7)}, "A", id="6-points"),
        pytest.param({"conversion_rate": D("0.11")}, "A", id="5-points"),
        pytest.param({}, "B", id="4-points"),
        pytest.param({"pace": D("0.8")}, "C", id="3-points"),
        pytest.param({"pace": D("0.5"), "conversion_rate": D("0.09")}, "D", id="2-points"),
        pytest.param({"pace": D("0.5"), "conversion_rate": D("0.05")}, "F", id="1-point"),
        pytest.param(
            {"pace": D("0.5"), "conversion_rate": D("0.05"), "average_quality": D(4)}, "F", id="0-points"
        ),
        pytest.param({"overall_rate": D(0), "conversion_rate": D(0)}, "B", id="nobody-converted-is-neutral"),
        pytest.param({"leads": 0}, None, id="no-leads"),
    ],
)
def test_grade_rules(changes: dict[str, object], expected: str | None) -> None:
    assert grade(replace(BASE, **changes)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "strength", "opportunity", "recommendation"),
    [
        pytest.param(
            {"conversion_rate": D("0.12")},
            "Converts 12.0% of its leads, above the 10.0% of all agencies.",
            None,
            None,
            id="converts-well",
        ),
        pytest.param(
            {"conversion_rate": D("0.05"), "weakest_campaign": "fb", "weakest_campaign_roi": D("-20.0")},
            None,
            "Converts 5.0% of its leads, below the 10.0% of all agencies.",
            "Review lead sources with the agency, starting with campaign fb.",
            id="converts-poorly",
        ),
        pytest.param(
            {},
            "On pace for its monthly goal: 300 of 600 leads so far.",
            None,
            "Keep the current plan: no measure is below its threshold.",
            id="on-pace",
        ),
        pytest.param(
            {"pace": D("2.5"), "month_leads": 750},
            None,
            None,
            "Raise the monthly goal: it runs at 250.0% of pace.",
            id="far-ahead",
        ),
        pytest.param(
            {"pace": D("0.5"), "month_leads": 150},
            None,
            "Behind its monthly goal: 150 of 600 leads, 50.0% of pace.",
            "Agree a volume plan with the agency around its top campaign tiktok.",
            id="behind",
        ),
        pytest.param(
            {"average_quality": D("4.2")},
            None,
            "Low lead quality: average score 4.2.",
            "Require consent evidence (TrustedForm) and complete contact data.",
            id="low-quality",
        ),
        pytest.param(
            {"average_quality": D("8.1")}, "High lead quality: average score 8.1.", None, None, id="quality"
        ),
        pytest.param(
            {"top_campaign_roi": D("150.0")},
            "Top campaign tiktok returns 150.0% on lead cost.",
            None,
            None,
            id="profitable-campaign",
        ),
        pytest.param(
            {"weakest_campaign": "fb", "weakest_campaign_roi": D("-35.5")},
            None,
            "Campaign fb loses money: -35.5% on lead cost.",
            "Reprice or pause campaign fb.",
            id="losing-campaign",
        ),
        pytest.param(
            {"trend_change": D("-25.0")},
            None,
            "Lead volume fell 25.0% against the previous 30 days.",
            None,
            id="falling",
        ),
        pytest.param(
            {"trend_change": D("12.5")},
            "Lead volume grew 12.5% against the previous 30 days.",
            None,
            None,
            id="growing",
        ),
    ],
)
def test_insight_rules(
    changes: dict[str, object], strength: str | None, opportunity: str | None, recommendation: str | None
) -> None:
    found = insights(replace(BASE, **changes), "Summit", 600)  # type: ignore[arg-type]
    if strength:
        assert strength in found.strengths
    if opportunity:
        assert opportunity in found.opportunities
    if recommendation:
        assert recommendation in found.recommendations
    assert found.recommendations  # always at least one next step


def test_insights_follow_the_numbers_not_a_script() -> None:
    good = insights(replace(BASE, conversion_rate=D("0.2"), average_quality=D(8)), "Summit", 600)
    poor = insights(
        replace(BASE, conversion_rate=D("0.02"), average_quality=D(3), pace=D("0.1")), "Summit", 600
    )
    assert good.opportunities == []
    assert len(good.strengths) == 3
    assert poor.strengths == []
    assert len(poor.opportunities) == 3
    assert len(poor.recommendations) == 3


def test_credits_make_the_agency_cpa_and_return_on_spend_net() -> None:
    # Given V001's buckets with one 40.00 lead of today returned and credited
    credited = {name: dict(counters) for name, counters in BUCKETS.items()}
    credited[day(0)] |= {"v#V001#returns": D(1), "v#V001#credits": D("40.00")}
    plain, _ = performance(BUCKETS, "V001", "Summit", 600, TODAY)
    block, _ = performance(credited, "V001", "Summit", 600, TODAY)
    # Then spend stays, and net spend, CPA and return on spend lose the credit
    assert (block.revenue, block.returns, block.credits, block.netSpend) == (
        plain.revenue,
        1,
        D("40.00"),
        plain.revenue - D("40.00"),
    )
    assert (plain.returns, plain.credits, plain.netSpend) == (0, D("0.00"), plain.revenue)
    assert block.avgCPA == (block.netSpend / 6).quantize(D("0.01"))  # 6 conversions in the window
    assert block.returnOnSpend == (D("3100.00") / block.netSpend).quantize(D("0.01"))
