"""Lead pricing: the settings, and the smart price with its factors (SPEC §3).

    price = base * demand * quality * vendorPerformance * timeOfDay, clamped to [min, max]

- base: the vendor's price from the pricing table, else the default price.
- demand: leads per day over the last 7 days against leads per day over the last 30, bounded to
  [0.80, 1.25]; 1 without 30 days of volume.
- quality: the lead's quality score / 10, so within [0.1, 1.0].
- vendorPerformance: the vendor's conversion rate (the cohort rate of `shared.measures`: of its
  leads of the last 90 days, the share closed by now) against the rate of all vendors, bounded to
  [0.75, 1.25]; 1 while either rate is unknown.
- timeOfDay: the multiplier of the settings' hour range holding the current hour in the business
  time zone, each within [0.5, 1.5]; 1 outside every range.

Money is `Decimal` throughout and the price is rounded half-up to cents after clamping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import measures
from shared.buckets import TOTALS, VENDORS, Buckets, DayBuckets, days_ending, scoped, summed
from shared.types import JsonBody, Money, Number

CENT = Decimal("0.01")
FACTOR_PLACES = Decimal("0.0001")
SETTINGS_KEY = "SETTINGS"
DEFAULT_PRICE = Decimal("35.00")
DEFAULT_MIN_PRICE = Decimal("10.00")
DEFAULT_MAX_PRICE = Decimal("150.00")

RECENT_DAYS = 7
AVERAGE_DAYS = 30
PERFORMANCE_DAYS = 90
DEMAND_BOUNDS = (Decimal("0.80"), Decimal("1.25"))
VENDOR_PERFORMANCE_BOUNDS = (Decimal("0.75"), Decimal("1.25"))
QUALITY_BOUNDS = (Decimal("0.1"), Decimal("1.0"))
TIME_OF_DAY_BOUNDS = (Decimal("0.5"), Decimal("1.5"))
FACTOR_BOUNDS = {
    "demand": DEMAND_BOUNDS,
    "quality": QUALITY_BOUNDS,
    "vendorPerformance": VENDOR_PERFORMANCE_BOUNDS,
    "timeOfDay": TIME_OF_DAY_BOUNDS,
}


class HourMultiplier(JsonBody):
    """`multiplier` applies from `from_hour` (inclusive) to `to_hour` (exclusive), business time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_hour: int = Field(ge=0, le=23)
    to_hour: int = Field(ge=1, le=24)
    multiplier: Number = Field(ge=TIME_OF_DAY_BOUNDS[0], le=TIME_OF_DAY_BOUNDS[1])

    @model_validator(mode="after")
    def _ordered(self) -> HourMultiplier:
        if self.to_hour <= self.from_hour:
            raise ValueError("to_hour must be after from_hour")
        return self


def check_price_range(min_price: Decimal | None, max_price: Decimal | None) -> None:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise ValueError("min_price must not be above max_price")


def check_bands(bands: list[HourMultiplier] | None) -> None:
    hours = [0] * 24
    for band in bands or []:
        for hour in range(band.from_hour, band.to_hour):
            hours[hour] += 1
    if any(count > 1 for count in hours):
        raise ValueError("time_of_day_multipliers must not overlap")


class PricingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_price: Money = Field(default=DEFAULT_PRICE, gt=0)
    smart_pricing_enabled: bool = False
    min_price: Money = Field(default=DEFAULT_MIN_PRICE, gt=0)
    max_price: Money = Field(default=DEFAULT_MAX_PRICE, gt=0)
    time_of_day_multipliers: list[HourMultiplier] = Field(default_factory=list, max_length=24)

    @model_validator(mode="after")
    def _consistent(self) -> PricingSettings:
        check_price_range(self.min_price, self.max_price)
        check_bands(self.time_of_day_multipliers)
        return self

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> PricingSettings:
        fields = {name: value for name, value in (item or {}).items() if name in cls.model_fields}
        return cls.model_validate(fields)

    def multiplier_at(self, hour: int) -> Decimal:
        for band in self.time_of_day_multipliers:
            if band.from_hour <= hour < band.to_hour:
                return band.multiplier
        return Decimal(1)


@dataclass(frozen=True)
class MarketSignals:
    """What smart pricing reads from the stats buckets for one vendor."""

    recent_leads_per_day: Decimal
    average_leads_per_day: Decimal
    vendor_conversion_rate: Decimal | None
    overall_conversion_rate: Decimal | None

    @classmethod
    def from_buckets(cls, buckets: Buckets, vendor_code: str, today: date) -> MarketSignals:
        """From the buckets of (at least) the `PERFORMANCE_DAYS` days ending `today`."""
        recent = summed(buckets, days_ending(today, RECENT_DAYS))
        average = summed(buckets, days_ending(today, AVERAGE_DAYS))
        window = summed(buckets, days_ending(today, PERFORMANCE_DAYS))
        vendor = scoped(window, "v", vendor_code)
        return cls(
            recent_leads_per_day=recent.get("leads", Decimal(0)) / RECENT_DAYS,
            average_leads_per_day=average.get("leads", Decimal(0)) / AVERAGE_DAYS,
            vendor_conversion_rate=measures.conversion_rate(vendor),
            overall_conversion_rate=measures.conversion_rate(window),
        )


def bounded(value: Decimal, bounds: tuple[Decimal, Decimal]) -> Decimal:
    low, high = bounds
    return min(high, max(low, value)).quantize(FACTOR_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Quote:
    price: Decimal
    base: Decimal
    smart: bool
    factors: dict[str, Decimal] | None


def smart_factors(
    settings: PricingSettings, signals: MarketSignals, quality_score: int, hour: int
) -> dict[str, Decimal]:
    demand = (
        signals.recent_leads_per_day / signals.average_leads_per_day
        if signals.average_leads_per_day
        else Decimal(1)
    )
    performance = (
        signals.vendor_conversion_rate / signals.overall_conversion_rate
        if signals.vendor_conversion_rate is not None and signals.overall_conversion_rate
        else Decimal(1)
    )
    return {
        "demand": bounded(demand, DEMAND_BOUNDS),
        "quality": bounded(Decimal(quality_score) / 10, QUALITY_BOUNDS),
        "vendorPerformance": bounded(performance, VENDOR_PERFORMANCE_BOUNDS),
        "timeOfDay": bounded(settings.multiplier_at(hour), TIME_OF_DAY_BOUNDS),
    }


def quote(
    settings: PricingSettings,
    vendor_price: Decimal | None,
    quality_score: int,
    hour: int,
    signals: MarketSignals | None,
) -> Quote:
    """The price of a lead. With smart pricing off (or no signals) it is the vendor's price, else
    the default price; with it on, the formula above."""
    base = vendor_price if vendor_price is not None else settings.default_price
    if not settings.smart_pricing_enabled or signals is None:
        return Quote(price=base.quantize(CENT, rounding=ROUND_HALF_UP), base=base, smart=False, factors=None)
    factors = smart_factors(settings, signals, quality_score, hour)
    raw = base
    for value in factors.values():
        raw *= value
    price = min(settings.max_price, max(settings.min_price, raw))
    return Quote(price=price.quantize(CENT, rounding=ROUND_HALF_UP), base=base, smart=True, factors=factors)


class Pricer:
    """Prices a lead now: reads the market signals (one Query of at most `PERFORMANCE_DAYS` day
    buckets) only when smart pricing is on."""

    def __init__(self, buckets: DayBuckets, zone: ZoneInfo) -> None:
        self._buckets = buckets
        self._zone = zone

    def quote(
        self,
        settings: PricingSettings,
        vendor_code: str,
        vendor_price: Decimal | None,
        quality_score: int,
        now: datetime,
    ) -> Quote:
        local = now.astimezone(self._zone)
        signals = None
        if settings.smart_pricing_enabled:
            buckets = self._buckets.last_days(local.date(), PERFORMANCE_DAYS, (TOTALS, VENDORS))
            signals = MarketSignals.from_buckets(buckets, vendor_code, local.date())
        return quote(settings, vendor_price, quality_score, local.hour, signals)
