"""The revenue forecast (`stats.forecast`) on constructed series, and the backtest's maths
(`crm.bench_forecast`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.bench_forecast import (
    Block,
    backtest,
    daily_revenue,
    errors,
    held_out_blocks,
    held_out_weeks,
    render,
    synthetic_series,
)
from stats.forecast import (
    DAMPING,
    Z_80,
    daily_mean_range,
    forecast,
    quantile,
    straight_line,
    weekday_trend,
)

D = Decimal
WEEK = [D(300), D(250), D(220), D(200), D(180), D(60), D(40)]  # a week's daily revenue, quiet weekend


def weeks_of(pattern: Sequence[Decimal], days: int) -> list[Decimal]:
    return [pattern[day % len(pattern)] for day in range(days)]


# ------------------------------------------------------------------ the method
def test_a_pure_weekly_pattern_is_forecast_exactly_with_no_spread() -> None:
    # Given eight weeks that repeat the same week
    history = weeks_of(WEEK, 56)
    # When the next week and the next ten days are forecast
    week, ten_days = forecast(history, 7), forecast(history, 10)
    # Then each is the pattern's days that follow, and every backtested week was exact
    assert week.point == sum(WEEK) == D("1250.00")
    assert ten_days.point == sum(WEEK) + sum(WEEK[:3])
    assert week.method == "weekday-trend"
    assert (week.low, week.high) == (week.point, week.point)


def test_the_next_days_follow_the_weekday_of_the_history_s_last_day() -> None:
    # Given 60 days of the pattern: the last is WEEK[3], the next WEEK[4]
    history = weeks_of(WEEK, 60)
    # Then one day ahead is WEEK[4], two days WEEK[4] + WEEK[5]
    assert forecast(history, 1).point == WEEK[4]
    assert forecast(history, 2).point == WEEK[4] + WEEK[5]


def test_a_trend_is_followed_near_and_damped_far() -> None:
    # Given revenue growing by 1 a day: 100, 101, ... 155 (the last day)
    history = [D(100 + day) for day in range(56)]
    # When the next week and the next year are forecast
    week, year = forecast(history, 7).point, forecast(history, 365).point
    # Then the week lies above the last day's level and below the undamped line
    assert D(7 * 155) < week < D(sum(155 + step for step in range(1, 8)))
    # And the year adds at most φ/(1-φ) days of slope to the last level, however far
    most_trend = DAMPING / (1 - DAMPING)
    assert D(365 * 155) < year <= D(365 * (155 + most_trend)) + D("0.01")
    assert year < D(straight_line([float(value) for value in history], 365))


def test_a_fall_to_nothing_forecasts_nothing_never_below_zero() -> None:
    # Given revenue falling to nothing over eight weeks (the line would go below zero)
    history = [D(max(0, 1000 - 25 * day)) for day in range(56)]
    # When forecast over a week and a year
    for horizon in (7, 365):
        result = forecast(history, horizon)
        # Then nothing is negative
        assert D(0) <= result.low <= result.point <= result.high
    assert forecast(history, 7).point == D("0.00")


def test_no_history_forecasts_zero_with_a_zero_range() -> None:
    result = forecast([], 30)
    assert (result.point, result.low, result.high, result.method) == (D(0), D(0), D(0), "no-history")


def test_the_days_before_the_first_revenue_are_left_out() -> None:
    # Given a business that started two weeks ago at 100 a day, in a history of 74 days
    history = [D(0)] * 60 + [D(100)] * 14
    # Then the next week is 100 a day: the 60 days before it started do not pull the level down
    result = forecast(history, 7)
    assert (result.point, result.low, result.high) == (D("700.00"), D("700.00"), D("700.00"))
    # And a history without revenue forecasts nothing
    assert forecast([D(0)] * 30, 7) == forecast([], 7)


def test_under_two_weeks_of_history_forecasts_the_mean_day() -> None:
    # Given ten days of history around 100 a day
    history = [D(value) for value in (80, 120, 90, 110, 100, 95, 105, 85, 115, 100)]
    # When the next 30 days are forecast
    result = forecast(history, 30)
    # Then it is the mean day * 30, with the range of a mean of independent days around it
    assert result.method == "daily-mean"
    assert result.point == D("3000.00")
    assert D(0) < result.low < result.point < result.high
    assert result.point - result.low == result.high - result.point  # symmetric when above zero


def test_one_day_of_history_has_no_spread_to_measure() -> None:
    result = forecast([D(40)], 7)
    assert (result.point, result.low, result.high) == (D("280.00"), D("280.00"), D("280.00"))


def test_the_daily_mean_range_counts_the_days_and_the_mean_s_own_uncertainty() -> None:
    # Given days of 10 and 20 (mean 15, standard deviation √50), one day ahead
    low, high = daily_mean_range([10.0, 20.0], 1)
    # Then the margin is z80 * sd * √(1 + 1/2)
    margin = Z_80 * math.sqrt(50) * math.sqrt(1.5)
    assert low == pytest.approx(max(0.0, 15 - margin))
    assert high == pytest.approx(15 + margin)


def test_the_range_widens_with_noise() -> None:
    # Given the same weeks, once exact and once with alternate weeks 20 % above and below
    steady = weeks_of(WEEK, 56)
    noisy = [value * (D("1.2") if (day // 7) % 2 else D("0.8")) for day, value in enumerate(steady)]
    # Then only the noisy one has a spread, and it contains its point
    exact, spread = forecast(steady, 7), forecast(noisy, 7)
    assert exact.low == exact.high
    assert spread.low < spread.point < spread.high


@settings(max_examples=100, deadline=None)
@given(
    history=st.lists(st.integers(0, 100_000).map(lambda cents: D(cents).scaleb(-2)), max_size=120),
    horizon=st.integers(1, 400),
)
def test_any_history_gives_money_with_low_at_most_point_at_most_high(
    history: list[Decimal], horizon: int
) -> None:
    result = forecast(history, horizon)
    assert D(0) <= result.low <= result.point <= result.high
    for value in (result.low, result.point, result.high):
        assert value == value.quantize(D("0.01"))
    if not any(history):
        assert result.high == 0


def test_weekday_trend_with_under_two_weeks_is_the_mean_day() -> None:
    assert weekday_trend([10.0, 20.0, 30.0], 4) == pytest.approx(80.0)


def test_quantile_interpolates_between_sorted_values() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert quantile(values, 0.0) == 1.0
    assert quantile(values, 0.5) == 3.0
    assert quantile(values, 1.0) == 5.0
    assert quantile(values, 0.1) == pytest.approx(1.4)
    assert quantile(values, 0.9) == pytest.approx(4.6)


def test_the_straight_line_extends_the_least_squares_line_never_below_zero() -> None:
    assert straight_line([10.0, 20.0, 30.0], 3) == pytest.approx(150.0)
    assert straight_line([30.0, 20.0, 10.0], 5) == 0.0
    assert straight_line([], 7) == 0.0


# ------------------------------------------------------------------ the backtest's maths
def test_mape_bias_and_share_in_range_on_a_known_case() -> None:
    # Given two blocks: 100 forecast 110 (in range), 200 forecast 150 (below its range)
    blocks = [
        Block(actual=100, predicted=110, low=90, high=120),
        Block(actual=200, predicted=150, low=140, high=180),
    ]
    result = errors(blocks)
    # Then MAPE = (10 % + 25 %) / 2, bias = (10 - 50) / 300, half the blocks in range
    assert result.blocks == 2
    assert result.mape == pytest.approx(17.5)
    assert result.bias == pytest.approx(-40 / 300 * 100)
    assert result.in_range == pytest.approx(50.0)


def test_a_block_without_revenue_counts_in_the_bias_but_not_in_the_mape() -> None:
    blocks = [Block(actual=0, predicted=30, low=0, high=40), Block(actual=100, predicted=90, low=80, high=95)]
    result = errors(blocks)
    assert result.mape == pytest.approx(10.0)
    assert result.bias == pytest.approx(20.0)
    assert errors([Block(actual=0, predicted=0, low=0, high=0)]).mape is None


def test_held_out_blocks_are_a_week_apart_end_with_the_series_and_see_only_the_days_before() -> None:
    # Given a series 0, 1, 2, ... of 80 days, and a forecaster that reports what it was given
    series = [float(day) for day in range(80)]
    seen: list[tuple[int, float]] = []

    def recorder(history: Sequence[float], horizon: int) -> tuple[float, float, float]:
        seen.append((len(history), history[-1]))
        return 0.0, 0.0, 0.0

    # When the 7-day blocks are held out
    blocks = held_out_blocks(series, recorder, 7)
    # Then they are the last (80 - 56) // 7 = 3 weeks, the last ending with the series
    assert held_out_weeks(80, 7) == 3
    assert [block.actual for block in blocks] == [sum(range(start, start + 7)) for start in (59, 66, 73)]
    # And each forecast read only the days before its block
    assert seen == [(59, 58.0), (66, 65.0), (73, 72.0)]


def test_a_series_too_short_to_hold_out_a_block_has_no_rows() -> None:
    assert held_out_weeks(62, 7) == 0
    assert backtest("short", [1.0] * 62) == []


def test_daily_revenue_fills_missing_days_and_starts_at_the_first_revenue() -> None:
    from datetime import date

    buckets = {"2026-11-03": {"revenue": D(40)}, "2026-11-05": {"revenue": D(35), "leads": D(1)}}
    assert daily_revenue(buckets, date(2026, 11, 1), date(2026, 11, 6)) == [40.0, 0.0, 35.0, 0.0]


def test_the_synthetic_series_are_fixed_and_the_method_beats_the_window_s_line_on_them() -> None:
    # Given the synthetic shapes (drawn twice with the fixed seed)
    shapes = synthetic_series()
    assert shapes == synthetic_series()
    # When each is backtested
    rows = [row for name, series in shapes.items() for row in backtest(name, series)]
    # Then every horizon has its blocks, and over a week or four the method's error is below the
    # error of the line the dashboard drew through its window
    assert {row.horizon for row in rows} == {7, 28, 91}
    for row in rows:
        assert row.method.blocks == row.window_line.blocks > 0
        if row.horizon <= 28:
            assert row.method.mape is not None
            assert row.window_line.mape is not None
            assert row.method.mape < row.window_line.mape, row
    table = render(rows)
    assert table.count("\n") == len(rows) + 1
