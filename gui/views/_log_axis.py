"""A y axis whose log-mode labels never overlap: 1, 2, 5 × 10ⁿ kept only where there is room.

pyqtgraph labels the minor log ticks (2…9 × 10ⁿ) whenever they fit on average, but they
crowd towards the top of each decade, so labels print over each other in a short lane.
Here every candidate tick is drawn, and labels are chosen greedily by rank (decades, then
5 and 2, then 3, then the rest), each at least ``MIN_GAP`` pixels from those kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyqtgraph as pg

MIN_GAP = 16.0  # pixels between two labels
_RANK = {1: 0, 5: 1, 2: 1, 3: 2}


def log_ticks(lo: float, hi: float, pixels: float, gap: float = MIN_GAP) -> tuple[list[float], list[float]]:
    """``(labelled, unlabelled)`` tick positions in log10 units over ``[lo, hi]`` drawn over ``pixels``."""
    lo, hi = min(lo, hi), max(lo, hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo <= 0 or pixels <= 0:
        return [], []
    per_unit = pixels / (hi - lo)
    first, last = math.floor(lo), math.ceil(hi)
    if last - first > 400:  # absurd ranges: decades only, thinned
        step = math.ceil((last - first) * gap / pixels)
        return [float(d) for d in range(first, last + 1, step) if lo <= d <= hi], []
    mantissas = range(1, 10) if per_unit > 30 else (1,)
    cands = [(n + math.log10(m), _RANK.get(m, 3)) for n in range(first, last + 1) for m in mantissas]
    cands = [(v, r) for v, r in cands if lo <= v <= hi]
    kept: list[float] = []
    for v, _r in sorted(cands, key=lambda c: (c[1], c[0])):
        if all(abs(v - k) * per_unit >= gap for k in kept):
            kept.append(v)
    labelled = sorted(kept)
    rest = sorted(v for v, _ in cands if v not in kept)
    return labelled, rest


class LogTickAxis(pg.AxisItem):
    """``AxisItem`` that picks its own log-mode ticks (``log_ticks``); linear mode is pyqtgraph's."""

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: ANN201, N802, N803
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        labelled, rest = log_ticks(minVal, maxVal, size)
        return [(1.0, labelled), (None, rest)]

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float | None) -> list[str]:  # noqa: N802
        if self.logMode and spacing is None:  # the unlabelled ticks of ``log_ticks``
            return ["" for _ in values]
        return super().tickStrings(values, scale, spacing)
