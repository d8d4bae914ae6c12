"""Per-step event maths shared by the late-onset detectors (spikes, outlier batches, mixing).

Everything here is scale-free and NaN-aware: a row whose statistic was not measured
(NaN) is neither evidence for nor against an event. Levels are robust (medians of a
row's neighbourhood), spreads are robust (MAD), so one event never hides itself by
moving its own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from analysis.metrics import quiet

MAD_SIGMA = 1.4826  # MAD -> standard deviation of a normal


@quiet
def centered_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median of the ``2·half + 1`` rows around each row (NaN ignored; edges use what there is)."""
    a = np.asarray(x, dtype=np.float64)
    n = len(a)
    if n == 0:
        return a.copy()
    pad = np.concatenate([np.full(half, np.nan), a, np.full(half, np.nan)])
    win = sliding_window_view(pad, 2 * half + 1)
    return np.nanmedian(win, axis=1)


@quiet
def robust_spread(x: np.ndarray) -> float:
    """``1.4826 · MAD`` of the finite values (NaN when fewer than 5)."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if len(a) < 5:
        return float("nan")
    return float(MAD_SIGMA * np.median(np.abs(a - np.median(a))))


@quiet
def log_excess(x: np.ndarray, half: int) -> np.ndarray:
    """``ln(x / median of the neighbourhood)`` per row for positive ``x`` (NaN elsewhere)."""
    a = np.asarray(x, dtype=np.float64)
    a = np.where(np.isfinite(a) & (a > 0), a, np.nan)
    return np.log(a) - np.log(centered_median(a, half))


def neighbourhood(n: int) -> int:
    """Half-width of the neighbourhood a spike is judged against: 10 rows, fewer in short runs."""
    return int(max(2, min(10, n // 20)))


@quiet
def block_levels(x: np.ndarray, n_blocks: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, medians)`` of ``n_blocks`` consecutive row blocks (NaN ignored)."""
    a = np.asarray(x, dtype=np.float64)
    n = len(a)
    b = int(max(1, min(n_blocks, n)))
    edges = np.linspace(0, n, b + 1).astype(np.int64)
    med = np.array([np.nanmedian(a[edges[i]:edges[i + 1]]) if edges[i + 1] > edges[i] else np.nan
                    for i in range(b)])
    return edges, med


@quiet
def outside_both_sides(x: np.ndarray, half: int) -> np.ndarray:
    """Per row, ``ln(x) - ln(level)`` where the level is the larger of the medians of the ``half``
    rows before and the ``half`` rows after (the row itself excluded): a short excursion stands
    out against both sides; a lasting change of level does not."""
    a = np.asarray(x, dtype=np.float64)
    a = np.where(np.isfinite(a) & (a > 0), np.log(np.where(a > 0, a, 1.0)), np.nan)
    n = len(a)
    if n == 0:
        return a.copy()
    pad = np.concatenate([np.full(half, np.nan), a, np.full(half, np.nan)])
    win = sliding_window_view(pad, half)
    before = np.nanmedian(win[:n], axis=1)
    after = np.nanmedian(win[half + 1:half + 1 + n], axis=1)
    level = np.fmax(before, after)
    return a - level


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, last)]`` row ranges where ``mask`` is True."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), stops.tolist()))


@quiet
def side_levels(x: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the medians of the ``half`` rows before and the ``half`` rows after it (the row
    itself excluded; NaN where a side has no finite value)."""
    a = np.asarray(x, dtype=np.float64)
    n = len(a)
    if n == 0:
        return a.copy(), a.copy()
    pad = np.concatenate([np.full(half, np.nan), a, np.full(half, np.nan)])
    win = sliding_window_view(pad, half)
    return np.nanmedian(win[:n], axis=1), np.nanmedian(win[half + 1:half + 1 + n], axis=1)


@dataclass(frozen=True)
class Spikes:
    """Short excursions of a positive series above both its neighbourhoods."""

    rows: np.ndarray  # rows of the spikes (a multi-row spike counts each row)
    excess: np.ndarray  # ln(value / local level) per spike row
    level: np.ndarray  # the local level (the higher of the two sides) per spike row
    threshold: float  # ln-excess a row needed
    events: list[tuple[int, int]]  # (first, last) rows of each spike


@quiet
def spikes(x: np.ndarray, margin: float = 0.0, min_ratio: float = 4.0, spread_k: float = 6.0,
           half: int | None = None) -> Spikes:
    """Rows where ``x`` jumps ≥ ``min_ratio``x (and ≥ ``spread_k`` robust spreads of the run's
    own log-noise) above the levels both before and after it, by at least ``margin``.

    Both sides must be finite: a jump that never comes back is a divergence, not a spike.
    """
    a = np.asarray(x, dtype=np.float64)
    a = np.where(np.isfinite(a) & (a > 0), a, np.nan)
    n = len(a)
    half = neighbourhood(n) if half is None else half
    empty = Spikes(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), float("nan"), [])
    if n < 2 * half + 1 or np.isfinite(a).sum() < 2 * half + 1:
        return empty
    before, after = side_levels(a, half)
    level = np.fmax(before, after)
    both = np.isfinite(before) & np.isfinite(after)
    excess = np.where(both, np.log(a) - np.log(level), np.nan)
    # The run's own noise: spread of ln(x) around its neighbourhood, spikes included (MAD
    # ignores them).
    noise = robust_spread(np.log(a) - np.log(np.fmin(before, after)))
    threshold = float(max(np.log(min_ratio), spread_k * (noise if np.isfinite(noise) else 0.0)))
    hit = (excess >= threshold) & (a - level >= margin)
    rows = np.flatnonzero(hit)
    return Spikes(rows, excess[rows], level[rows], threshold, runs_of(hit))
