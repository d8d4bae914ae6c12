"""Histograms for display: one step as bars, every step as a steps × bins image. Numpy only.

The recorder stores each histogram row with its own ``[min, max]`` range and fixed bin
count, so rows are not on one value axis. ``time_image`` puts them on a common one
honestly: each row's counts are spread uniformly inside its own bins (the only thing the
stored counts say) and integrated over the common bins, so every row keeps its total.
A row whose range is one value (an all-zero gradient) is a spike at that value, never a
bar at ``value − 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _degenerate(lo: float, hi: float) -> bool:
    return not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo


@dataclass
class StepHist:
    """Bars of one stored histogram row: ``edges`` (B+1), ``counts`` (B); ``single``: all one value."""

    edges: np.ndarray
    counts: np.ndarray
    single: float | None  # the value when the range is one point (all zero, constant), else None
    x_range: tuple[float, float]  # what the x axis should show


def step_hist(counts: np.ndarray, value_range: np.ndarray) -> StepHist:
    """Display bars for one stored row (``counts`` (B,), ``value_range`` (2,))."""
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    lo, hi = (float(v) for v in np.asarray(value_range, dtype=np.float64).reshape(-1)[:2])
    if not c.size or c.sum() <= 0:
        return StepHist(np.zeros(0), np.zeros(0), None, (0.0, 1.0))
    if _degenerate(lo, hi):
        v = lo if np.isfinite(lo) else 0.0
        s = max(abs(v), 1.0)
        return StepHist(np.array([v - s / 80, v + s / 80]), np.array([c.sum()]), v, (v - s, v + s))
    edges = np.linspace(lo, hi, len(c) + 1)
    pad = 0.02 * (hi - lo)
    return StepHist(edges, c, None, (lo - pad, hi + pad))


@dataclass
class TimeImage:
    """Counts of every histogram row on one value axis: ``image`` (H, bins) float64, ``edges`` (bins+1)."""

    image: np.ndarray
    edges: np.ndarray
    has_row: np.ndarray  # (H,) bool: the row holds a histogram (False: nothing recorded there)


def common_edges(ranges: np.ndarray, bins: int) -> np.ndarray:
    """``bins + 1`` edges spanning every finite row range (a unit span around a single value)."""
    r = np.asarray(ranges, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(r).all(axis=1)
    if not ok.any():
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(r[ok, 0].min()), float(r[ok, 1].max())
    if hi <= lo:
        s = max(abs(lo), 1.0)
        lo, hi = lo - s, lo + s
    return np.linspace(lo, hi, bins + 1)


def time_image(counts: np.ndarray, ranges: np.ndarray, bins: int = 128) -> TimeImage:
    """Rebin ``counts`` (H, B) with per-row ``ranges`` (H, 2) onto ``bins`` common bins (mass kept)."""
    c = np.asarray(counts, dtype=np.float64)
    r = np.asarray(ranges, dtype=np.float64).reshape(-1, 2)
    h, b = c.shape
    edges = common_edges(r, bins)
    total = c.sum(axis=1)
    has_row = total > 0
    lo, hi = r[:, 0:1], r[:, 1:2]
    flat = ~(np.isfinite(lo) & np.isfinite(hi) & (hi > lo))[:, 0]
    # CDF of each row at the common edges: cum[k] + frac * c[k], position t in the row's bins.
    cum = np.concatenate([np.zeros((h, 1)), np.cumsum(c, axis=1)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (edges[None, :] - lo) / (hi - lo) * b
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, b)
    k = np.minimum(np.floor(t).astype(np.int64), b - 1)
    frac = t - k
    rows = np.arange(h)[:, None]
    cdf = cum[rows, k] + frac * c[rows, k]
    image = np.diff(cdf, axis=1)
    for i in np.flatnonzero(flat & has_row):  # one value: all of it into the bin that holds it
        v = lo[i, 0] if np.isfinite(lo[i, 0]) else 0.0
        j = int(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1))
        image[i] = 0.0
        image[i, j] = total[i]
    image[~has_row] = 0.0
    return TimeImage(np.maximum(image, 0.0), edges, has_row)


def log_counts(image: np.ndarray) -> np.ndarray:
    """``log10(1 + count)``: the colour scale of histogram images (empty bins at 0)."""
    return np.log10(1.0 + np.maximum(np.asarray(image, dtype=np.float64), 0.0))


def step_extent(steps: np.ndarray, last_step: float | None = None) -> tuple[float, float]:
    """``(x0, width)`` of an image whose columns are centred on the (evenly spaced) ``steps``.

    A single column spans from its step to ``last_step`` (the run's last step) when given:
    one histogram holds for the whole run after it.
    """
    s = np.asarray(steps, dtype=np.float64)
    if not s.size:
        return 0.0, 1.0
    if s.size == 1 and last_step is not None and last_step > s[0]:
        return float(s[0]), float(last_step - s[0]) + 1.0
    d = float(np.median(np.diff(s))) if s.size > 1 else 1.0
    d = d if d > 0 else 1.0
    return float(s[0]) - d / 2, float(s[-1] - s[0]) + d
