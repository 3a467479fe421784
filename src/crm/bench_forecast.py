"""`crm bench --forecast`: the dashboard's revenue forecast backtested on held-out weeks, next to
the straight line it replaced.

For each daily revenue series and horizon (7, 28 and 91 days), blocks of `horizon` days a week
apart, the last one ending with the series, are held out (up to `HELD_OUT_WEEKS`, each with at
least `FULL_HISTORY_DAYS` days before it, and `horizon` days for the window's line). Each block is
forecast from the days before it by:

- the method (`stats.forecast.forecast`), from the last `HISTORY_DAYS` days, as the dashboard
  gives them;
- the window's line: the straight line the dashboard drew, through the window's own days (as many
  as the horizon: a 7-day window projected the next 7 days from its 7 days);
- the 8-week line: a straight line through the last `FULL_HISTORY_DAYS` days, the days the
  method reads.

Errors are measured on the blocks' totals:

- **MAPE** — the mean of |forecast - actual| ÷ actual over the blocks (blocks without revenue are
  left out), in percent;
- **bias** — Σ (forecast - actual) ÷ Σ actual, in percent: above 0, the method forecasts too much;
- **in range** — the share of blocks whose actual total lies within the forecast's low..high.

The series are fixed: the demo seed's daily revenue (`crm.seed`, generated in memory at a fixed
moment, at the default size and ten times it) and synthetic shapes drawn with a fixed random seed.
With `--live`, the day buckets of the stack `crm.targets` picks are backtested instead (the
running `crm serve` by default, or `--stack` / `--aws-port`).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from stats.forecast import FULL_HISTORY_DAYS, HISTORY_DAYS, SEASON, forecast, straight_line

HELD_OUT_WEEKS = 8
HORIZONS = (7, 28, 91)  # a week, four weeks, thirteen weeks
DEMO_NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # the demo series are generated as of this moment
SYNTHETIC_DAYS = 91 + 91 + HELD_OUT_WEEKS * SEASON  # every horizon's blocks fit
SYNTHETIC_SEED = 15
WEEKDAY_SHAPE = (1.25, 1.15, 1.1, 1.05, 1.0, 0.8, 0.65)  # a working week, quieter at the weekend
LIVE_DAYS = 365  # days of buckets `--live` reads, ending yesterday


@dataclass(frozen=True)
class Block:
    """One held-out block: its actual total and what a method forecast for it."""

    actual: float
    predicted: float
    low: float
    high: float


@dataclass(frozen=True)
class Errors:
    blocks: int
    mape: float | None  # percent; None when no block had revenue
    bias: float | None  # percent; None when the blocks had no revenue at all
    in_range: float | None  # share of blocks within low..high, percent


@dataclass(frozen=True)
class Row:
    series: str
    horizon: int
    method: Errors
    window_line: Errors  # the line the dashboard drew, through the window's days
    history_line: Errors  # a line through the days the method reads


Forecaster = Callable[[Sequence[float], int], tuple[float, float, float]]


def method_forecast(history: Sequence[float], horizon: int) -> tuple[float, float, float]:
    """The dashboard's forecast (`stats.forecast.forecast`) from the last `HISTORY_DAYS` days:
    point, low, high."""
    result = forecast([Decimal(repr(value)) for value in history[-HISTORY_DAYS:]], horizon)
    return float(result.point), float(result.low), float(result.high)


def window_line_forecast(history: Sequence[float], horizon: int) -> tuple[float, float, float]:
    """The straight line the dashboard used to draw: through the window's own days (as many as the
    horizon), with no range."""
    point = straight_line(history[-horizon:], horizon)
    return point, point, point


def history_line_forecast(history: Sequence[float], horizon: int) -> tuple[float, float, float]:
    """A straight line through the `FULL_HISTORY_DAYS` days the method reads, with no range."""
    point = straight_line(history[-FULL_HISTORY_DAYS:], horizon)
    return point, point, point


def held_out_weeks(length: int, horizon: int) -> int:
    """How many blocks of `horizon` days, a week apart and the last one ending with the series,
    a series of `length` days holds out: up to `HELD_OUT_WEEKS`, each leaving the days the method
    and the lines read (`FULL_HISTORY_DAYS`, and `horizon` for the window's line) before it."""
    return max(0, min(HELD_OUT_WEEKS, (length - max(FULL_HISTORY_DAYS, horizon) - horizon) // SEASON + 1))


def held_out_blocks(series: Sequence[float], method: Forecaster, horizon: int) -> list[Block]:
    """The held-out blocks of `horizon` days of `series` (`held_out_weeks`), each forecast by
    `method` from the days before it."""
    n = len(series)
    weeks = held_out_weeks(n, horizon)
    blocks = []
    for week in range(weeks):
        origin = n - horizon - (weeks - 1 - week) * SEASON
        point, low, high = method(series[:origin], horizon)
        actual = sum(series[origin : origin + horizon])
        blocks.append(Block(actual=actual, predicted=point, low=low, high=high))
    return blocks


def errors(blocks: Sequence[Block]) -> Errors:
    """MAPE, bias and the share within range of `blocks` (definitions in the module docstring)."""
    with_revenue = [block for block in blocks if block.actual > 0]
    actual = sum(block.actual for block in blocks)
    return Errors(
        blocks=len(blocks),
        mape=statistics.fmean(abs(b.predicted - b.actual) / b.actual * 100 for b in with_revenue)
        if with_revenue
        else None,
        bias=sum(block.predicted - block.actual for block in blocks) / actual * 100 if actual else None,
        in_range=sum(block.low <= block.actual <= block.high for block in blocks) / len(blocks) * 100
        if blocks
        else None,
    )


def backtest(name: str, series: Sequence[float]) -> list[Row]:
    """Each horizon's errors of the method and of both straight lines, where a block fits."""
    return [
        Row(
            series=name,
            horizon=horizon,
            method=errors(held_out_blocks(series, method_forecast, horizon)),
            window_line=errors(held_out_blocks(series, window_line_forecast, horizon)),
            history_line=errors(held_out_blocks(series, history_line_forecast, horizon)),
        )
        for horizon in HORIZONS
        if held_out_weeks(len(series), horizon)
    ]


def daily_revenue(buckets: dict[str, dict[str, Decimal]], first: date, last: date) -> list[float]:
    """Each day's `revenue` counter from `first` to `last` (0 for a day without a bucket), from the
    first day with revenue on."""
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    series = [float(buckets.get(day.isoformat(), {}).get("revenue", Decimal(0))) for day in days]
    start = next((index for index, value in enumerate(series) if value > 0), len(series))
    return series[start:]


def demo_series(lead_count: int, now: datetime = DEMO_NOW) -> list[float]:
    """The daily revenue of the demo seed's leads (`crm seed --leads lead_count` at `now`), up to
    the day before `now` (UTC days)."""
    from crm.seed import iter_demo_leads
    from leads.repository import LeadRepository
    from stats.rebuild import expected_buckets

    items = (LeadRepository.to_item(lead) for lead in iter_demo_leads(lead_count, now))
    buckets = expected_buckets(items, ZoneInfo("UTC"))
    yesterday = now.date() - timedelta(days=1)
    return daily_revenue(buckets, yesterday - timedelta(days=LIVE_DAYS - 1), yesterday)


def synthetic_series(seed: int = SYNTHETIC_SEED, days: int = SYNTHETIC_DAYS) -> dict[str, list[float]]:
    """Daily revenue shapes around 1,000 a day, drawn with a fixed seed: a flat level with the
    weekly shape and 10 % noise; the same growing from 600 to 1,400 and falling from 1,400 to 600;
    and a flat level with 30 % noise and no weekly shape."""
    rng = random.Random(seed)  # nosec B311  # reproducible test series, not secrets

    def shaped(level: Callable[[int], float], noise: float, weekly: bool = True) -> list[float]:
        return [
            max(0.0, level(day) * (WEEKDAY_SHAPE[day % SEASON] if weekly else 1.0) * rng.gauss(1, noise))
            for day in range(days)
        ]

    return {
        "flat + weekly shape": shaped(lambda day: 1000, 0.1),
        "growth (600 → 1,400) + weekly": shaped(lambda day: 600 + 800 * day / (days - 1), 0.1),
        "decline (1,400 → 600) + weekly": shaped(lambda day: 1400 - 800 * day / (days - 1), 0.1),
        "noise (30 %), no weekly shape": shaped(lambda day: 1000, 0.3, weekly=False),
    }


def fixed_series() -> dict[str, list[float]]:
    return {
        "demo seed, 300 leads": demo_series(300),
        "demo seed, 3,000 leads": demo_series(3000),
        **synthetic_series(),
    }


def live_series(stack_name: str | None, aws_port: int | None) -> tuple[str, list[float]]:
    """The daily revenue of the chosen stack's buckets, over `LIVE_DAYS` days ending yesterday."""
    from crm.targets import use_stack

    where = use_stack(stack_name, aws_port)
    from shared import dependencies
    from shared.buckets import TOTALS

    yesterday = datetime.now(dependencies.business_zone()).date() - timedelta(days=1)
    first = yesterday - timedelta(days=LIVE_DAYS - 1)
    buckets = dependencies.day_buckets().between(first.isoformat(), yesterday.isoformat(), (TOTALS,))
    return where, daily_revenue(buckets, first, yesterday)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def render(rows: Sequence[Row]) -> str:
    lines = [
        "| series | horizon | blocks | weekday-trend MAPE | bias | in range "
        "| window's line MAPE | bias | 8-week line MAPE | bias |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.series} | {row.horizon} d | {row.method.blocks} | {_percent(row.method.mape)} "
            f"| {_signed(row.method.bias)} | {_percent(row.method.in_range)} "
            f"| {_percent(row.window_line.mape)} | {_signed(row.window_line.bias)} "
            f"| {_percent(row.history_line.mape)} | {_signed(row.history_line.bias)} |"
        )
    return "\n".join(lines)


def main(live: bool = False, stack_name: str | None = None, aws_port: int | None = None) -> int:
    if live or stack_name or aws_port:
        where, series = live_series(stack_name, aws_port)
        named = {f"{where}, {len(series)} days": series}
    else:
        named = fixed_series()
    rows = [row for name, series in named.items() for row in backtest(name, series)]
    print(render(rows))
    if not rows:
        print(f"nothing to hold out: fewer than {FULL_HISTORY_DAYS + SEASON} days of revenue")
        return 1
    return 0
