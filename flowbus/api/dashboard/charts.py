"""Small charts drawn as SVG shapes on the server: no script, no inline style, nothing to load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

WIDTH = 600
HEIGHT = 80


class Bar(NamedTuple):
    x: float
    y: float
    width: float
    height: float
    title: str


def stacked_bars(series: Sequence[tuple[str, Sequence[float]]], labels: Sequence[str]) -> list[tuple[str, list[Bar]]]:
    """One bar per slot, the series stacked bottom-up; each series keeps its name (its CSS class)."""
    slots = len(labels)
    if not slots:
        return [(name, []) for name, _ in series]
    top = max((sum(values[i] for _, values in series) for i in range(slots)), default=0) or 1
    step = WIDTH / slots
    base = [0.0] * slots
    drawn: list[tuple[str, list[Bar]]] = []
    for name, values in series:
        bars = []
        for i, value in enumerate(values):
            height = value / top * HEIGHT
            if value:
                title = f"{labels[i]}: {value:g} {name}"
                bars.append(Bar(i * step + 0.5, HEIGHT - base[i] - height, max(step - 1, 0.5), height, title))
            base[i] += height
        drawn.append((name, bars))
    return drawn


class Tick(NamedTuple):
    x1: float
    x2: float
    y: float
    title: str


def ticks(values: Sequence[float | None], labels: Sequence[str], unit: str) -> list[Tick]:
    """One level mark per slot that has a value (a step chart: a single minute still shows)."""
    top = max((v for v in values if v is not None), default=0) or 1
    step = WIDTH / max(len(values), 1)
    return [
        Tick(
            i * step + 1, (i + 1) * step - 1, HEIGHT - v / top * (HEIGHT - 4) - 2, f"{labels[i]}: {v * 1000:.1f} {unit}"
        )
        for i, v in enumerate(values)
        if v is not None
    ]
