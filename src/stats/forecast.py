"""Revenue forecasts from daily revenue: the point value the dashboard shows, and its range.

`forecast(history, horizon)` takes the daily revenue of complete days (oldest first, the last one
yesterday; `HISTORY_DAYS` of them, 13 weeks: the method reads the last 8, the range all of them)
and projects the sum over the next `horizon` days (docs/stats.md, "Forecast: method, range and
backtest").

- **Method `weekday-trend`** (at least `MIN_SEASONAL_DAYS` of history): the mean day of the last
  four weeks, moved along the trend from the four weeks before them (damped, so that it adds at
  most nine days of slope however far ahead), times each weekday's share of those last four
  weeks (`weekday_trend`). It keeps the weekly pattern of daily buckets, and a long horizon
  never extrapolates a trend for months.
- **Fallbacks**: fewer than `MIN_SEASONAL_DAYS` days, `daily-mean` (the mean of the days there
  are * horizon); no day with revenue, `no-history` (0, range 0..0). The history starts at its
  first day with revenue.
- **Range** (`low`..`high`): an empirical ~80 % interval. The method forecasts each `BLOCK_DAYS`
  block of the history from the days before it (rolling origin: a block starting on each day that
  has two weeks before it, up to `MAX_ORIGINS` of them); the 10th and 90th percentiles of
  actual ÷ forecast over those blocks, times the point, are the bounds (widened to the point when
  it lies outside them). With fewer than `MIN_ERRORS` such blocks, the bounds are those of a daily
  mean of independent days: horizon * mean ± z₈₀ * sd * √(horizon + horizon²/n).

Nothing is ever negative; every value is money (to the cent) with low ≤ point ≤ high.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.buckets import money

HISTORY_DAYS = 91  # complete days of history a forecast reads (at least this many)
SEASON = 7  # days of the weekly pattern
WEEKS = 4  # whole weeks of the recent span (and of the span before it, for the trend)
FULL_HISTORY_DAYS = 2 * WEEKS * SEASON  # the days the method reads; the rest serve the range
DAMPING = 0.9  # each day ahead, the trend adds this share of what it added the day before
MIN_SEASONAL_DAYS = 2 * SEASON  # two values per weekday, at least, before trusting the pattern
BLOCK_DAYS = 7  # the length of the history blocks whose errors give the range
MAX_ORIGINS = 91  # the range reads the errors of the last 13 weeks' blocks at most
MIN_ERRORS = 5  # fewer backtested blocks than this: the range of a daily mean instead
LOW_QUANTILE, HIGH_QUANTILE = 0.1, 0.9  # an 80 % interval
Z_80 = 1.2816  # the standard normal's 90th percentile

Method = Callable[[Sequence[float], int], float]


@dataclass(frozen=True)
class Forecast:
    point: Decimal
    low: Decimal
    high: Decimal
    method: str


def weekday_trend(history: Sequence[float], horizon: int) -> float:
    """Σ over the next `horizon` days of level * weekday index, the level following a damped trend.

    Over the last k whole weeks (k = min(`WEEKS`, n // 14), the same span once more before them):
    the level L is the recent span's mean day, the slope b = (L - the earlier span's mean) ÷ its
    days, the level at the last day E = L + b * (7k - 1) ÷ 2; a weekday's index is its mean over the
    recent span ÷ L. Future day j (1, 2, ...) = max(0, E + b * (φ + φ² + ... + φʲ)) * its weekday's
    index, φ = `DAMPING`: the trend adds at most b * φ ÷ (1 - φ) (9 days of slope), however far.
    Day i of the history and day n + j - 1 of the future share a weekday when their distance is a
    multiple of 7. Fewer than two weeks of history: the mean day * horizon."""
    n = len(history)
    weeks = min(WEEKS, n // (2 * SEASON))
    if weeks == 0:
        return daily_mean(history, horizon)
    span = weeks * SEASON
    level = statistics.fmean(history[n - span :])
    slope = (level - statistics.fmean(history[n - 2 * span : n - span])) / span
    last_level = level + slope * (span - 1) / 2
    by_weekday = [0.0] * SEASON
    for day in range(n - span, n):
        by_weekday[day % SEASON] += history[day] / weeks
    index = [value / level if level > 0 else 1.0 for value in by_weekday]
    total, trend_days, weight = 0.0, 0.0, 1.0
    for step in range(horizon):
        weight *= DAMPING
        trend_days += weight
        total += max(0.0, last_level + slope * trend_days) * index[(n + step) % SEASON]
    return total


def daily_mean(history: Sequence[float], horizon: int) -> float:
    """The mean day of `history` * `horizon` (0 without history)."""
    return max(0.0, statistics.fmean(history) * horizon) if history else 0.0


def straight_line(history: Sequence[float], horizon: int) -> float:
    """Σ of a least-squares line through `history` over the next `horizon` days, at least 0: the
    method this module replaced, kept as the backtest's baseline."""
    n = len(history)
    if n == 0:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(history)
    spread = sum((x - mean_x) ** 2 for x in range(n))
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(history))
    slope = covariance / spread if spread else 0.0
    intercept = mean_y - slope * mean_x
    return max(0.0, sum(intercept + slope * (n + step) for step in range(horizon)))


def method_for(history: Sequence[float]) -> tuple[str, Method]:
    """The method `forecast` applies to a history of this length, and its name."""
    if not history:
        return "no-history", daily_mean
    if len(history) < MIN_SEASONAL_DAYS:
        return "daily-mean", daily_mean
    return "weekday-trend", weekday_trend


def forecast(history: Sequence[Decimal], horizon: int) -> Forecast:
    """The revenue of the next `horizon` days after `history` (daily revenue, oldest first). The
    days before the first with revenue are left out: the business had not started."""
    days = [max(0.0, float(value)) for value in history]
    days = days[next((day for day, value in enumerate(days) if value > 0), len(days)) :]
    name, method = method_for(days)
    point = method(days, horizon)
    low, high = error_ratios_range(days, method, point) or daily_mean_range(days, horizon)
    return Forecast(
        point=_money(point),
        low=_money(min(low, point)),
        high=_money(max(high, point)),
        method=name,
    )


def error_ratios_range(history: Sequence[float], method: Method, point: float) -> tuple[float, float] | None:
    """point * the 10th and 90th percentiles of actual ÷ forecast of the history's `BLOCK_DAYS`
    blocks, each forecast by `method` from the days before it; None with fewer than `MIN_ERRORS`
    blocks to go by."""
    n = len(history)
    ratios = []
    for origin in range(max(MIN_SEASONAL_DAYS, n - BLOCK_DAYS - MAX_ORIGINS + 1), n - BLOCK_DAYS + 1):
        predicted = method(history[:origin], BLOCK_DAYS)
        if predicted > 0:
            ratios.append(sum(history[origin : origin + BLOCK_DAYS]) / predicted)
    if len(ratios) < MIN_ERRORS:
        return None
    low, high = quantile(ratios, LOW_QUANTILE), quantile(ratios, HIGH_QUANTILE)
    return point * low, point * high


def daily_mean_range(history: Sequence[float], horizon: int) -> tuple[float, float]:
    """The ~80 % interval of the sum of `horizon` independent days around the history's mean,
    counting the uncertainty of the mean itself: h * mean ± z₈₀ * sd * √(h + h²/n), at least 0."""
    n = len(history)
    if n < 2:
        point = daily_mean(history, horizon)
        return point, point  # no spread to measure: the point itself
    centre = statistics.fmean(history) * horizon
    margin = Z_80 * statistics.stdev(history) * math.sqrt(horizon + horizon * horizon / n)
    return max(0.0, centre - margin), centre + margin


def quantile(values: Sequence[float], share: float) -> float:
    """The `share` quantile of `values`, interpolated between the sorted values (share 0 = the
    least, 1 = the greatest)."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _money(value: float) -> Decimal:
    return money(Decimal(repr(max(0.0, value))))
