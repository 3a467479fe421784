"""The definitions of the numbers every stats surface shows, written once (docs/stats.md).

Each function takes the summed counters of one scope over the days of a window (`shared.buckets`):
totals, or one vendor's, campaign's or agent's. Counters counted on the day a lead was created:
`leads`, `revenue` (lead spend, Σ `lead_value`), `quality_sum`, `won` (those of the leads that
are closed by now), `returns` (those whose return is approved) and `credits` (Σ `lead_value` of
those returns, credited back to their vendors). Counted on the day a lead closed: `conversions`,
`sales` (Σ `sale_amount`) and `closed_days`.

- **spend** is what the leads cost (Σ `lead_value`); **net spend** = spend - credits, what they
  cost once approved returns are credited.

- **conversion rate** is a cohort rate: of the leads created in the window, the share closed by
  now (`won / leads`), so it is never above 100 %. `conversions`, the leads closed in the window
  whenever they were created, is a period count and keeps its own name.
- **CPL** = net spend / leads; **CPA** = net spend / conversions (None without leads in the
  window: no spend to divide); **return on spend** = sales / net spend;
  **velocity** = mean days from creation to close of the leads closed in the window; **average
  quality** = quality_sum / leads.
- A rate or average whose denominator is zero is `None` (null in the API), never 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from shared.buckets import Counters

ZERO = Decimal(0)
TENTH = Decimal("0.1")
CENT = Decimal("0.01")


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return part / whole if whole else None


def leads(measures: Counters) -> int:
    return int(measures.get("leads", ZERO))


def spend(measures: Counters) -> Decimal:
    """Σ `lead_value` of the leads created in the window (the seed's `revenue`)."""
    return measures.get("revenue", ZERO)


def credits(measures: Counters) -> Decimal:
    """Σ `lead_value` of the leads created in the window whose return is approved."""
    return measures.get("credits", ZERO)


def returns(measures: Counters) -> int:
    """Leads created in the window whose return is approved (each credited its price)."""
    return int(measures.get("returns", ZERO))


def net_spend(measures: Counters) -> Decimal:
    """spend - credits: what the leads created in the window cost once returns are credited."""
    return spend(measures) - credits(measures)


def sales(measures: Counters) -> Decimal:
    """Σ `sale_amount` of the leads closed in the window."""
    return measures.get("sales", ZERO)


def conversions(measures: Counters) -> int:
    """Leads closed in the window, whenever they were created (a period count)."""
    return int(measures.get("conversions", ZERO))


def converted(measures: Counters) -> int:
    """Leads created in the window that are closed by now (the cohort's conversions)."""
    return int(measures.get("won", ZERO))


def conversion_rate(measures: Counters) -> Decimal | None:
    """Cohort rate, a fraction in [0, 1]: converted / leads."""
    return _ratio(measures.get("won", ZERO), measures.get("leads", ZERO))


def cost_per_lead(measures: Counters) -> Decimal | None:
    """net spend / leads."""
    return _ratio(net_spend(measures), measures.get("leads", ZERO))


def cost_per_acquisition(measures: Counters) -> Decimal | None:
    """net spend / conversions; None without conversions, and None without leads created in the
    window: conversions of leads bought before it have no spend in it, and 0.00 would call them
    free."""
    if not leads(measures):
        return None
    return _ratio(net_spend(measures), measures.get("conversions", ZERO))


def return_on_spend(measures: Counters) -> Decimal | None:
    """Sales per unit of net lead spend: sales / net spend (2.5 = $2.50 of sales per $1 of leads);
    None when nothing was spent net of credits."""
    return _ratio(sales(measures), net_spend(measures))


def velocity(measures: Counters) -> Decimal | None:
    """Mean days from creation to close of the leads closed in the window."""
    closed_days = measures.get("closed_days")
    return _ratio(closed_days, measures.get("conversions", ZERO)) if closed_days is not None else None


def average_quality(measures: Counters) -> Decimal | None:
    return _ratio(measures.get("quality_sum", ZERO), measures.get("leads", ZERO))


# -- how the API shows them -----------------------------------------------------------------------
def as_percent(fraction: Decimal | None) -> Decimal | None:
    """A fraction in percent to one decimal, half up; None stays None."""
    return (fraction * 100).quantize(TENTH, rounding=ROUND_HALF_UP) if fraction is not None else None


def as_money(value: Decimal | None) -> Decimal | None:
    """A sum or average of money to the cent, half up; None stays None."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP) if value is not None else None


def as_ratio(value: Decimal | None) -> Decimal | None:
    """A ratio (return on spend) to two decimals, half up; None stays None."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP) if value is not None else None


def as_tenth(value: Decimal | None) -> Decimal | None:
    """An average (days, quality score) to one decimal, half up; None stays None."""
    return value.quantize(TENTH, rounding=ROUND_HALF_UP) if value is not None else None


def percent_change(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    """The percent change from `previous` to `current`, to one decimal; None when either is
    missing or `previous` is 0 (no change can be stated against nothing)."""
    if current is None or not previous:
        return None
    return ((current - previous) / previous * 100).quantize(TENTH, rounding=ROUND_HALF_UP)
