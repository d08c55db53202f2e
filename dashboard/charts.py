"""Geometry for the dashboard's server-rendered SVG charts (no JavaScript, no CDN)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    center: float
    height: float
    label: str
    value: int
    show_label: bool


@dataclass(frozen=True)
class Tick:
    y: float
    value: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    total: int


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above value (axis top)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def daily_bar_chart(
    points: list[tuple[date, int]], *, width: int = 720, height: int = 220
) -> BarChart:
    """A bar per day, an axis with three ticks, and a date label on every 5th bar."""
    left, right, top, bottom = 44, 24, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    ceiling = _nice_ceiling(max((value for _, value in points), default=0))
    slot = plot_w / max(len(points), 1)
    baseline = top + plot_h
    bars = []
    for i, (day, value) in enumerate(points):
        h = plot_h * value / ceiling
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.15, 2),
                center=round(left + (i + 0.5) * slot, 2),
                y=round(baseline - h, 2),
                width=round(slot * 0.7, 2),
                height=round(h, 2),
                label=day.strftime("%b %d"),
                value=value,
                show_label=(len(points) - 1 - i) % 5 == 0,
            )
        )
    ticks = [Tick(y=round(baseline - plot_h * f, 2), value=ceiling * f) for f in (0, 0.5, 1)]
    total = sum(value for _, value in points)
    return BarChart(width, height, left, baseline, bars, ticks, total)


def share_bars(items: list[tuple[str, int]]) -> list[tuple[str, int, float]]:
    """(name, count, percent of the largest) for horizontal bars drawn with CSS widths."""
    largest = max((count for _, count in items), default=0) or 1
    return [(name, count, round(100 * count / largest, 1)) for name, count in items]
