"""Report tables from day buckets, the CSV form, and the day range rules."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from reports.service import report_vendor
from reports.tables import agent_rows, campaign_rows, daily_rows, totals, vendor_rows
from shared.csv_export import cell, to_csv
from shared.dates import DayRange, RangeTooLarge
from shared.errors import BadRequest, Forbidden
from shared.security import Principal, Role

D = Decimal
DAYS = ["2026-11-01", "2026-11-02"]
BUCKETS = {
    "2026-11-01": {
        "leads": D(3),
        "revenue": D("105.00"),
        "quality_sum": D(18),
        "c#tiktok#leads": D(2),
        "c#tiktok#revenue": D("70.00"),
        "c#(none)#leads": D(1),
        "c#(none)#revenue": D("35.00"),
        "v#V001#leads": D(2),
        "v#V001#revenue": D("70.00"),
        "v#V001#quality_sum": D(13),
        "v#V002#leads": D(1),
        "v#V002#revenue": D("35.00"),
        "v#V002#quality_sum": D(5),
        "vc#V001#tiktok#leads": D(2),
        "vc#V001#tiktok#revenue": D("70.00"),
        "vc#V002#(none)#leads": D(1),
        "vc#V002#(none)#revenue": D("35.00"),
        "a#agent-1#leads": D(2),
        "a#agent-1#revenue": D("70.00"),
        # the lead closed on the 2nd was created on the 1st: that day's cohort counts it as won
        "won": D(1),
        "c#tiktok#won": D(1),
        "v#V001#won": D(1),
        "vc#V001#tiktok#won": D(1),
        "a#agent-1#won": D(1),
    },
    "2026-11-02": {
        "conversions": D(1),
        "sales": D("900.00"),
        "c#tiktok#conversions": D(1),
        "c#tiktok#sales": D("900.00"),
        "v#V001#conversions": D(1),
        "v#V001#sales": D("900.00"),
        "vc#V001#tiktok#conversions": D(1),
        "vc#V001#tiktok#sales": D("900.00"),
        "a#agent-1#conversions": D(1),
        "a#agent-1#sales": D("900.00"),
    },
    "2026-10-31": {"leads": D(50), "v#V001#leads": D(50)},  # outside the requested days
}


def test_every_report_adds_up_to_the_totals() -> None:
    total = totals(BUCKETS, DAYS, None)
    assert total.model_dump() == {
        "leads": 3,
        "revenue": D("105.00"),
        "returns": 0,
        "credits": D("0.00"),
        "net_spend": D("105.00"),
        "conversions": 1,
        "converted": 1,
        "conversion_rate": D("33.3"),
        "cpa": D("105.00"),
        "sales": D("900.00"),
        "return_on_spend": D("8.57"),
    }
    for rows in (
        daily_rows(BUCKETS, DAYS, None),
        vendor_rows(BUCKETS, DAYS, None, {}),
        campaign_rows(BUCKETS, DAYS, None),
        agent_rows(BUCKETS, DAYS, {}),
    ):
        counts = [row.lead_count if hasattr(row, "lead_count") else row.leads for row in rows]  # type: ignore[union-attr]
        assert sum(counts) == total.leads
        assert sum(row.revenue for row in rows) == total.revenue
        assert sum(row.conversions for row in rows) == total.conversions
        assert sum(row.converted for row in rows) == total.converted
        assert sum(row.sales for row in rows) == total.sales


def test_daily_rows_are_per_day_and_vendor_with_average_quality() -> None:
    rows = daily_rows(BUCKETS, DAYS, None)
    assert [
        (row.date, row.vendor_code, row.lead_count, row.avg_quality, row.conversions) for row in rows
    ] == [
        ("2026-11-01", "V001", 2, D("6.5"), 0),
        ("2026-11-01", "V002", 1, D("5.0"), 0),
        ("2026-11-02", "V001", 0, None, 1),
    ]


def test_a_vendor_filter_narrows_rows_and_totals() -> None:
    assert totals(BUCKETS, DAYS, "V002").model_dump() == {
        "leads": 1,
        "revenue": D("35.00"),
        "returns": 0,
        "credits": D("0.00"),
        "net_spend": D("35.00"),
        "conversions": 0,
        "converted": 0,
        "conversion_rate": D("0.0"),
        "cpa": None,
        "sales": D("0.00"),
        "return_on_spend": D("0.00"),
    }
    assert [row.campaign for row in campaign_rows(BUCKETS, DAYS, "V002")] == [None]
    assert [row.vendor_code for row in vendor_rows(BUCKETS, DAYS, "V002", {"V002": "Blue"})] == ["V002"]


def test_credits_of_approved_returns_make_spend_cpa_and_return_on_spend_net() -> None:
    returned = {name: dict(counters) for name, counters in BUCKETS.items()}
    # V002's lead of the 1st (no campaign, no agent) is returned and credited its 35.00.
    for name in ("", "c#(none)#", "v#V002#", "vc#V002#(none)#"):
        returned["2026-11-01"][f"{name}returns"] = D(1)
        returned["2026-11-01"][f"{name}credits"] = D("35.00")
    total = totals(returned, DAYS, None)
    assert (total.revenue, total.returns, total.credits, total.net_spend) == (
        D("105.00"),
        1,
        D("35.00"),
        D("70.00"),
    )
    assert (total.cpa, total.return_on_spend) == (D("70.00"), D("12.86"))  # 70 net over 1; 900 / 70
    vendors = {row.vendor_code: row for row in vendor_rows(returned, DAYS, None, {})}
    assert (vendors["V002"].credits, vendors["V002"].net_spend, vendors["V002"].return_on_spend) == (
        D("35.00"),
        D("0.00"),
        None,  # nothing spent net of credits: no ratio
    )
    agents = {row.agent: row for row in agent_rows(returned, DAYS, {})}
    assert (agents[None].returns, agents[None].credits) == (1, D("35.00"))  # the unassigned remainder
    for rows in (daily_rows(returned, DAYS, None), campaign_rows(returned, DAYS, None)):
        assert sum(row.credits for row in rows) == total.credits
        assert sum(row.returns for row in rows) == total.returns


def test_leads_without_an_agent_get_their_own_row() -> None:
    rows = agent_rows(BUCKETS, DAYS, {"agent-1": "Agent One"})
    assert [(row.agent, row.name, row.leads, row.conversions) for row in rows] == [
        ("agent-1", "Agent One", 2, 1),
        (None, None, 1, 0),
    ]


def test_vendor_row_rates() -> None:
    (first, _) = vendor_rows(BUCKETS, DAYS, None, {"V001": "Summit"})
    assert (
        first.name,
        first.converted,
        first.conversion_rate,
        first.cpa,
        first.return_on_spend,
        first.avg_quality,
    ) == ("Summit", 1, D("50.0"), D("70.00"), D("12.86"), D("6.5"))


# Four days in which V003 closed three leads bought before them and bought one; V004 closed two old
# leads and bought none. Counted by close day over creation day, V003 would "convert" 300 %.
SHORT_DAYS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
OLD_LEADS_CLOSING = {
    "2026-11-20": {"leads": D(1), "revenue": D("40.00"), "v#V003#leads": D(1), "v#V003#revenue": D("40.00")},
    "2026-11-22": {
        "conversions": D(5),
        "sales": D("2500.00"),
        "v#V003#conversions": D(3),
        "v#V003#sales": D("1500.00"),
        "v#V004#conversions": D(2),
        "v#V004#sales": D("1000.00"),
    },
}


def test_conversion_rates_are_cohort_rates_and_null_without_leads() -> None:
    v003, v004 = vendor_rows(OLD_LEADS_CLOSING, SHORT_DAYS, None, {})
    # V003: three conversions in the window, but none of its one new lead is closed yet
    assert (v003.leads, v003.conversions, v003.converted, v003.conversion_rate) == (1, 3, 0, D("0.0"))
    assert (v003.cpa, v003.return_on_spend) == (D("13.33"), D("37.50"))
    # V004: conversions, no leads bought in the window: no rate, and no spend to make a CPA of
    assert (v004.leads, v004.conversions, v004.conversion_rate, v004.cpa) == (0, 2, None, None)
    assert (v004.sales, v004.return_on_spend, v004.avg_quality) == (D("1000.00"), None, None)
    total = totals(OLD_LEADS_CLOSING, SHORT_DAYS, "V004")
    assert (total.conversion_rate, total.cpa, total.return_on_spend) == (None, None, None)
    assert totals(OLD_LEADS_CLOSING, SHORT_DAYS, None).conversion_rate == D("0.0")
    # the daily row of the closing day has conversions and no cohort: every rate null
    closing_day = [row for row in daily_rows(OLD_LEADS_CLOSING, SHORT_DAYS, None) if row.date == "2026-11-22"]
    assert {(row.conversion_rate, row.cpa, row.return_on_spend) for row in closing_day} == {
        (None, None, None)
    }


def test_no_rate_is_over_100_percent_in_any_window() -> None:
    # a lead created and closed on the last day moves that day's cohort rate
    buckets = {
        **OLD_LEADS_CLOSING,
        "2026-11-23": {"leads": D(1), "won": D(1), "v#V003#leads": D(1), "v#V003#won": D(1)},
    }
    for first in range(len(SHORT_DAYS)):
        for last in range(first, len(SHORT_DAYS)):
            days = SHORT_DAYS[first : last + 1]
            rates = [row.conversion_rate for row in vendor_rows(buckets, days, None, {})]
            rates += [row.conversion_rate for row in daily_rows(buckets, days, None)]
            rates.append(totals(buckets, days, None).conversion_rate)
            assert all(rate is None or D(0) <= rate <= 100 for rate in rates), days
    (today,) = daily_rows(buckets, ["2026-11-23"], None)
    assert (today.lead_count, today.converted, today.conversion_rate) == (1, 1, D("100.0"))


def test_csv_has_a_header_row_quotes_where_needed_and_neutralises_formulas() -> None:
    rows = campaign_rows(
        {"2026-11-01": {'c#a, "quoted" one#leads': D(1), "c#=HYPERLINK(x)#leads": D(2)}}, ["2026-11-01"], None
    )
    text = to_csv(["campaign", "leads", "cpa"], rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["campaign", "leads", "cpa"]
    assert ['a, "quoted" one', "1", ""] in parsed
    assert ["'=HYPERLINK(x)", "2", ""] in parsed
    assert '"a, ""quoted"" one"' in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (D("35.00"), "35.00"),
        (3, "3"),
        ("plain", "plain"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
    ],
)
def test_cells(value: object, expected: str) -> None:
    assert cell(value) == expected


TODAY = date(2026, 11, 26)


def test_the_default_range_is_the_30_days_ending_today() -> None:
    span = DayRange.of(None, None, TODAY)
    assert (span.first, span.last, len(span.days)) == (date(2026, 10, 28), TODAY, 30)


def test_ranges_are_capped_at_400_days_and_ordered() -> None:
    assert len(DayRange.of(date(2025, 10, 23), TODAY, TODAY).days) == 400
    with pytest.raises(RangeTooLarge):
        DayRange.of(date(2025, 10, 22), TODAY, TODAY)
    with pytest.raises(BadRequest):
        DayRange.of(date(2026, 11, 27), TODAY, TODAY)


def test_a_vendor_reads_only_its_own_report() -> None:
    vendor = Principal("v", Role.VENDOR, vendor_code="V001")
    assert report_vendor(vendor, None) == "V001"
    assert report_vendor(vendor, "V001") == "V001"
    with pytest.raises(Forbidden):
        report_vendor(vendor, "V002")
    assert report_vendor(Principal("m", Role.MANAGER), "V002") == "V002"
    assert report_vendor(Principal("m", Role.MANAGER), None) is None
