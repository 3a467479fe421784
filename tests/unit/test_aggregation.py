"""What a lead contributes to the day buckets, and how a change is the difference of two states."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from stats.aggregation import LeadView, contribution, day_of, difference, merge

UTC = ZoneInfo("UTC")


def view(**overrides: object) -> LeadView:
    values: dict[str, object] = {
        "vendor_code": "V001",
        "campaign_source": "tiktok",
        "assigned_agent": "agent-1",
        "disposition": "new",
        "lead_value": "40.00",
        "quality_score": 7,
        "created_at": "2026-11-01T10:00:00.000Z",
        **overrides,
    }
    result = LeadView.from_values(values)
    assert result is not None
    return result


def test_a_new_lead_counts_on_its_creation_day_in_every_scope() -> None:
    buckets = contribution(view(), UTC)
    assert list(buckets) == ["2026-11-01"]
    day = buckets["2026-11-01"]
    for prefix in ("", "c#tiktok#", "v#V001#", "a#agent-1#"):
        assert day[f"{prefix}leads"] == 1
        assert day[f"{prefix}revenue"] == Decimal("40.00")
    assert day["quality_sum"] == 7
    assert day["d#new"] == 1
    assert "conversions" not in day


def test_a_closed_lead_also_counts_as_a_conversion_on_its_closing_day() -> None:
    closed = view(disposition="closed", closed_date="2026-11-04T22:00:00.000Z", sale_amount="1200.50")
    buckets = contribution(closed, UTC)
    assert buckets["2026-11-01"]["d#closed"] == 1
    # The creation day's cohort counts it as won, in every scope, while it stays closed.
    assert buckets["2026-11-01"]["won"] == buckets["2026-11-01"]["v#V001#won"] == 1
    assert "won" not in buckets["2026-11-04"]
    conversions = buckets["2026-11-04"]
    assert conversions["conversions"] == conversions["a#agent-1#conversions"] == 1
    assert conversions["sales"] == Decimal("1200.50")
    assert conversions["closed_days"] == Decimal("3.500")


@pytest.mark.parametrize("hidden", [{"is_test": True}, {"deleted": True}])
def test_test_and_deleted_leads_count_nowhere(hidden: dict[str, object]) -> None:
    assert contribution(view(**hidden), UTC) == {}


def test_days_are_taken_in_the_business_time_zone() -> None:
    assert day_of("2026-11-01T03:00:00.000Z", ZoneInfo("America/New_York")) == "2026-10-31"
    assert day_of("2026-11-01T03:00:00.000Z", UTC) == "2026-11-01"


def test_a_change_is_the_difference_of_the_two_states() -> None:
    before = view(disposition="qualified")
    after = view(disposition="closed", closed_date="2026-11-02T10:00:00.000Z", sale_amount="100")
    delta = difference(before, after, UTC)
    won = {f"{prefix}won": 1 for prefix in ("", "c#tiktok#", "v#V001#", "vc#V001#tiktok#", "a#agent-1#")}
    assert delta["2026-11-01"] == {"d#qualified": -1, "d#closed": 1, **won}
    assert delta["2026-11-02"]["conversions"] == 1


def test_a_reassignment_moves_the_agent_counters_only() -> None:
    delta = difference(view(), view(assigned_agent="agent-2"), UTC)
    assert delta == {
        "2026-11-01": {
            "a#agent-1#leads": -1,
            "a#agent-1#revenue": Decimal("-40.00"),
            "a#agent-2#leads": 1,
            "a#agent-2#revenue": Decimal("40.00"),
        }
    }


def test_deleting_takes_back_everything_the_lead_added() -> None:
    lead = view(disposition="closed", closed_date="2026-11-02T10:00:00.000Z")
    total = merge(
        merge({}, contribution(lead, UTC)), difference(lead, view(deleted=True, disposition="closed"), UTC)
    )
    assert total == {}


def test_an_approved_return_counts_its_credit_on_the_creation_day_in_every_scope() -> None:
    returned = view(return_status="approved", credit="40.00", disposition="contacted")
    day = contribution(returned, UTC)["2026-11-01"]
    for prefix in ("", "c#tiktok#", "v#V001#", "vc#V001#tiktok#", "a#agent-1#"):
        assert day[f"{prefix}returns"] == 1
        assert day[f"{prefix}credits"] == Decimal("40.00")
        assert day[f"{prefix}revenue"] == Decimal("40.00")  # spend stays: net spend subtracts credits
    assert day["d#contacted"] == 1  # the lead keeps its disposition


@pytest.mark.parametrize("status", [None, "pending", "rejected"])
def test_a_lead_without_an_approved_return_credits_nothing(status: str | None) -> None:
    day = contribution(view(return_status=status), UTC)["2026-11-01"]
    assert "returns" not in day
    assert "credits" not in day


def test_approving_a_return_moves_only_returns_and_credits() -> None:
    before = view()
    after = view(return_status="approved", credit="40.00")
    moved = difference(before, after, UTC)
    assert moved == {
        "2026-11-01": {
            f"{prefix}{name}": value
            for prefix in ("", "c#tiktok#", "v#V001#", "vc#V001#tiktok#", "a#agent-1#")
            for name, value in (("returns", Decimal(1)), ("credits", Decimal("40.00")))
        }
    }
