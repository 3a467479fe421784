"""Smart pricing: every quote within [min, max], every factor within its bounds, and with smart
pricing off the vendor's price or the default."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.pricing import (
    CENT,
    FACTOR_BOUNDS,
    HourMultiplier,
    MarketSignals,
    PricingSettings,
    quote,
)

TODAY = date(2026, 11, 26)

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
rates = st.one_of(st.none(), st.decimals(min_value=0, max_value=1, places=4))
volumes = st.decimals(min_value=0, max_value=100_000, places=3)


@st.composite
def settings_strategy(draw: st.DrawFn) -> PricingSettings:
    low, high = sorted([draw(money), draw(money)])
    start = draw(st.integers(0, 22))
    end = draw(st.integers(start + 1, 24))
    bands = draw(
        st.lists(
            st.builds(
                HourMultiplier,
                from_hour=st.just(start),
                to_hour=st.just(end),
                multiplier=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.5"), places=2),
            ),
            max_size=1,
        )
    )
    return PricingSettings(
        default_price=draw(money),
        smart_pricing_enabled=True,
        min_price=low,
        max_price=high,
        time_of_day_multipliers=bands,
    )


@given(
    settings=settings_strategy(),
    vendor_price=st.one_of(st.none(), money),
    quality=st.integers(1, 10),
    hour=st.integers(0, 23),
    recent=volumes,
    average=volumes,
    vendor_rate=rates,
    overall_rate=rates,
)
def test_a_smart_quote_is_within_min_and_max_and_each_factor_within_its_bounds(
    settings: PricingSettings,
    vendor_price: Decimal | None,
    quality: int,
    hour: int,
    recent: Decimal,
    average: Decimal,
    vendor_rate: Decimal | None,
    overall_rate: Decimal | None,
) -> None:
    # Given any settings and market
    signals = MarketSignals(recent, average, vendor_rate, overall_rate)
    # When a lead is quoted
    result = quote(settings, vendor_price, quality, hour, signals)
    # Then the price is clamped, in cents, and every factor is bounded
    assert settings.min_price <= result.price <= settings.max_price
    assert result.price == result.price.quantize(CENT)
    assert result.factors is not None
    assert set(result.factors) == set(FACTOR_BOUNDS)
    for name, value in result.factors.items():
        low, high = FACTOR_BOUNDS[name]
        assert low <= value <= high, name
    assert result.factors["quality"] == Decimal(quality) / 10


@given(
    vendor_price=st.one_of(st.none(), money),
    default=money,
    quality=st.integers(1, 10),
    hour=st.integers(0, 23),
)
def test_with_smart_pricing_off_the_price_is_the_vendor_price_or_the_default(
    vendor_price: Decimal | None, default: Decimal, quality: int, hour: int
) -> None:
    settings = PricingSettings(default_price=default, smart_pricing_enabled=False)
    signals = MarketSignals(Decimal(50), Decimal(10), Decimal("0.5"), Decimal("0.1"))
    result = quote(settings, vendor_price, quality, hour, signals)
    assert result.price == (vendor_price if vendor_price is not None else default)
    assert result.factors is None
    assert result.smart is False


@pytest.mark.parametrize(
    ("recent", "average", "expected"),
    [
        pytest.param("10", "10", "1.0000", id="steady"),
        pytest.param("11", "10", "1.1000", id="busier"),
        pytest.param("100", "10", "1.2500", id="capped-high"),
        pytest.param("1", "10", "0.8000", id="capped-low"),
        pytest.param("5", "0", "1.0000", id="no-history"),
    ],
)
def test_demand_is_recent_volume_against_its_average_bounded(
    recent: str, average: str, expected: str
) -> None:
    settings = PricingSettings(smart_pricing_enabled=True)
    signals = MarketSignals(Decimal(recent), Decimal(average), None, None)
    result = quote(settings, Decimal("40.00"), 10, 12, signals)
    assert result.factors is not None
    assert result.factors["demand"] == Decimal(expected)
    assert result.factors["vendorPerformance"] == Decimal(1)  # unknown rates are neutral


def test_the_formula_multiplies_the_factors_and_rounds_half_up_to_cents() -> None:
    # Given base 40.00, demand 1.1, quality 0.7, vendor 0.2/0.16 = 1.25, 9:00 at 1.2
    settings = PricingSettings(
        smart_pricing_enabled=True,
        min_price=Decimal("1.00"),
        max_price=Decimal("500.00"),
        time_of_day_multipliers=[HourMultiplier(from_hour=8, to_hour=12, multiplier=Decimal("1.2"))],
    )
    signals = MarketSignals(Decimal(11), Decimal(10), Decimal("0.2"), Decimal("0.16"))
    # When quoted at 9 o'clock with quality 7
    result = quote(settings, Decimal("40.00"), 7, 9, signals)
    # Then 40 * 1.1 * 0.7 * 1.25 * 1.2 = 46.20
    assert result.price == Decimal("46.20")
    assert result.factors == {
        "demand": Decimal("1.1000"),
        "quality": Decimal("0.7000"),
        "vendorPerformance": Decimal("1.2500"),
        "timeOfDay": Decimal("1.2000"),
    }
    # And outside the band the time of day is neutral
    assert quote(settings, Decimal("40.00"), 7, 12, signals).factors["timeOfDay"] == 1  # type: ignore[index]


def test_signals_come_from_the_day_buckets() -> None:
    # Conversion rates are cohort rates: the leads of the window closed by now ("won", counted on
    # their creation day); closes of the window ("conversions") do not count.
    buckets = {
        "2026-11-26": {"leads": Decimal(14), "v#V001#leads": Decimal(7), "v#V001#won": Decimal(1)},
        "2026-11-01": {
            "leads": Decimal(16),
            "won": Decimal(3),
            "v#V001#leads": Decimal(3),
            "conversions": Decimal(9),
        },
        "2026-09-01": {"leads": Decimal(10), "v#V001#leads": Decimal(10), "v#V001#won": Decimal(1)},
    }
    signals = MarketSignals.from_buckets(buckets, "V001", TODAY)
    assert signals.recent_leads_per_day == Decimal(14) / 7
    assert signals.average_leads_per_day == Decimal(30) / 30
    assert signals.vendor_conversion_rate == Decimal(2) / 20
    assert signals.overall_conversion_rate == Decimal(3) / 40


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"min_price": "50.00", "max_price": "40.00"}, id="min-above-max"),
        pytest.param(
            {
                "time_of_day_multipliers": [
                    {"from_hour": 8, "to_hour": 12, "multiplier": 1.1},
                    {"from_hour": 11, "to_hour": 14, "multiplier": 1.2},
                ]
            },
            id="overlapping-hours",
        ),
        pytest.param(
            {"time_of_day_multipliers": [{"from_hour": 8, "to_hour": 8, "multiplier": 1}]}, id="empty-band"
        ),
        pytest.param(
            {"time_of_day_multipliers": [{"from_hour": 0, "to_hour": 5, "multiplier": 3}]}, id="too-high"
        ),
        pytest.param({"default_price": "0"}, id="free"),
        pytest.param({"default_price": "1.234"}, id="fractions-of-cents"),
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PricingSettings.model_validate(settings)
