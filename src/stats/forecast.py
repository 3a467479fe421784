"""Revenue forecasts from daily revenue: the point value the dashboard shows, and its range.

`forecast(history, horizon)` takes the daily revenue of complete days (oldest first) and projects
the sum over the next `horizon` days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.buckets import money

HISTORY_DAYS = 56  # complete days of history a forecast reads (at least this many)


@dataclass(frozen=True)
class Forecast:
    point: Decimal
    low: Decimal
    high: Decimal
    method: str


def straight_line(series: Sequence[Decimal], horizon: int) -> Decimal:
    """Σ of a least-squares line through `series` over the next `horizon` points, at least 0."""
    n = len(series)
    zero = Decimal(0)
    if n == 0:
        return zero
    xs = [Decimal(x) for x in range(n)]
    mean_x, mean_y = sum(xs, zero) / n, sum(series, zero) / n
    spread = sum(((x - mean_x) ** 2 for x in xs), zero)
    covariance = sum(((x - mean_x) * (y - mean_y) for x, y in zip(xs, series, strict=True)), zero)
    slope = covariance / spread if spread else zero
    intercept = mean_y - slope * mean_x
    projected = sum((intercept + slope * Decimal(n + step) for step in range(horizon)), zero)
    return money(max(zero, projected))


def forecast(history: Sequence[Decimal], horizon: int) -> Forecast:
    point = straight_line(history, horizon)
    return Forecast(point=point, low=point, high=point, method="straight-line")
