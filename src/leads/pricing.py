"""The price of a lead (`lead_value`). Smart pricing replaces `lead_price` when enabled."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from leads.directory import PriceList

CENT = Decimal("0.01")


def lead_price(prices: PriceList, quality_score: int) -> Decimal:
    """The vendor's price from the pricing table, else the default price (35.00 unless set)."""
    price = prices.vendor_price if prices.vendor_price is not None else prices.default_price
    return price.quantize(CENT, rounding=ROUND_HALF_UP)
