"""Shared numerical helpers for detectors and views: numpy in, numpy out.

Every function is pure, vectorised and NaN/Inf tolerant (non-finite values are
ignored, never raised on), so detectors stay thin and the app can draw the very
numbers a report quotes. Statistics are scale-free where possible: ratios, logs,
ranks and changes over time rather than absolute thresholds.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def quiet(fn: F) -> F:
    """Run ``fn`` with numpy floating-point warnings and empty-slice RuntimeWarnings silenced."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- basics
def as_float(x: Any) -> np.ndarray:
    """``x`` as a float64 array with ±Inf turned into NaN."""
    a = np.array(x, dtype=np.float64)
    a[np.isinf(a)] = np.nan
    return a


@quiet
def nanmedian(x: Any, axis: int | None = None) -> Any:
    """``np.nanmedian`` without warnings; Inf counts as missing; all-missing gives NaN."""
    return np.nanmedian(as_float(x), axis=axis)


@quiet
def nanpercentile(x: Any, q: float, axis: int | None = None) -> Any:
    """``np.nanpercentile`` without warnings; Inf counts as missing."""
    return np.nanpercentile(as_float(x), q, axis=axis)


def any_positive(counts: np.ndarray) -> np.ndarray:
    """``(N,)`` rows of ``(N, K)`` counts with a positive one (NaN, not measured, is not)."""
    return (np.asarray(counts) > 0).any(axis=1)


def first_true(mask: np.ndarray) -> int:
    """Index of the first True of a 1-D mask, or -1."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return -1
    return int(np.argmax(mask))


def persistent_onset(mask: np.ndarray, min_frac: float = 0.8, min_rows: int = 1) -> int:
    """First index ``i`` from which ``mask`` holds on at least ``min_frac`` of rows ``i:``, or -1.

    Requires ``mask[i]`` itself and at least ``min_rows`` rows from ``i`` on.
    """
    m = np.asarray(mask, dtype=bool)
    n = len(m)
    if n == 0:
        return -1
    tail_true = np.cumsum(m[::-1])[::-1]  # True count in m[i:]
    tail_len = np.arange(n, 0, -1)
    ok = m & (tail_true >= min_frac * tail_len) & (tail_len >= min_rows)
    return first_true(ok)


def subsample_rows(n: int, max_rows: int = 4000, head: int = 8) -> np.ndarray:
    """Sorted row indices: the first ``head`` rows plus at most ``max_rows`` evenly spread ones."""
    if n <= max_rows + head:
        return np.arange(n)
    idx = np.unique(np.concatenate([np.arange(head), np.linspace(0, n - 1, max_rows).astype(np.int64)]))
    return idx


# --------------------------------------------------------------------------- smoothing
@quiet
def binned(x: Any, n_bins: int, stat: str = "median") -> np.ndarray:
    """``stat`` (``median``, ``mean``, ``min``, ``max``) of consecutive equal-size row bins.

    ``x`` is ``(N,)`` or ``(N, K)``; returns ``(B, …)`` with ``B = min(n_bins, N)``. Bins
    split rows as evenly as possible (sizes differ by at most one). Non-finite values
    are ignored; an all-missing bin gives NaN.
    """
    a = as_float(x)
    n = a.shape[0]
    b = max(1, min(int(n_bins), n))
    if n == 0:
        return a[:0]
    edges = np.linspace(0, n, b + 1).astype(np.int64)
    size = int(np.max(np.diff(edges)))
    # Pad every bin to ``size`` rows with NaN, then reduce along the bin axis.
    pos = np.arange(n) - np.repeat(edges[:-1], np.diff(edges))
    which = np.repeat(np.arange(b), np.diff(edges))
    grid = np.full((b, size) + a.shape[1:], np.nan)
    grid[which, pos] = a
    fn = {"median": np.nanmedian, "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}[stat]
    return fn(grid, axis=1)


def bin_edges(n: int, n_bins: int) -> np.ndarray:
    """Row boundaries ``(B + 1,)`` used by ``binned`` for ``n`` rows."""
    b = max(1, min(int(n_bins), n))
    return np.linspace(0, n, b + 1).astype(np.int64)


def ema(x: Any, alpha: float) -> np.ndarray:
    """Exponential moving average ``y[i] = (1-α) y[i-1] + α x[i]``, ``y[0] = x[0]``; NaN rows hold.

    Vectorised in blocks short enough that ``(1-α)^-k`` cannot overflow.
    """
    a = as_float(x).ravel()
    n = len(a)
    out = np.empty(n)
    if n == 0:
        return out
    alpha = float(min(max(alpha, 1e-12), 1.0 - 1e-12))
    beta = 1.0 - alpha
    block = max(1, int(600 / max(-math.log(beta), 1e-12)))
    prev = np.nan
    for start in range(0, n, block):
        seg = a[start:start + block]
        valid = ~np.isnan(seg)
        if np.isnan(prev):
            if not valid.any():
                out[start:start + len(seg)] = np.nan
                continue
            j = int(np.argmax(valid))
            out[start:start + j] = np.nan
            prev = seg[j]
            start, seg, valid = start + j, seg[j:], valid[j:]
        k = np.arange(len(seg))
        # Steps with a NaN input keep the average: weight 0 and decay 1 there.
        w = np.where(valid, alpha, 0.0)
        d = np.where(valid, beta, 1.0)
        logd = np.cumsum(np.log(d))  # log prod_{0..i} d
        inc = np.cumsum(np.where(valid, w * np.nan_to_num(seg), 0.0) * np.exp(-logd))
        out[start:start + len(seg)] = np.exp(logd) * (prev + inc)
        prev = out[start + k[-1]]
    return out


# --------------------------------------------------------------------------- trends
def theil_sen(x: Any, y: Any) -> float:
    """Median of pairwise slopes of finite ``(x, y)`` points (NaN with fewer than 2)."""
    xa, ya = as_float(x).ravel(), as_float(y).ravel()
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if len(xa) < 2:
        return float("nan")
    i, j = np.triu_indices(len(xa), k=1)
    dx = xa[j] - xa[i]
    keep = dx != 0
    if not keep.any():
        return float("nan")
    return float(np.median((ya[j] - ya[i])[keep] / dx[keep]))


@quiet
def log_slope(y: Any, n_bins: int = 40) -> float:
    """Robust slope of ``log10(y)`` per whole run (Theil–Sen over bin medians); NaN if not positive."""
    b = binned(y, n_bins)
    b = np.where(b > 0, b, np.nan)
    if np.sum(np.isfinite(b)) < 2:
        return float("nan")
    t = (np.arange(len(b)) + 0.5) / len(b)
    return theil_sen(t, np.log10(b))


@quiet
def growth(y: Any, frac: float = 0.1) -> float:
    """``log10`` of the median of the last ``frac`` of rows over that of the first (positive values)."""
    a = as_float(y)
    a = np.where(a > 0, a, np.nan)
    n = len(a)
    if n < 2:
        return float("nan")
    k = max(1, int(round(n * frac)))
    return float(np.log10(np.nanmedian(a[-k:]) / np.nanmedian(a[:k])))


@quiet
def decrease_test(y: Any, n_bins: int = 20) -> tuple[float, float]:
    """Is ``y`` still going down? ``(relative drop, z)`` between the first and second half.

    ``y`` is cut into ``n_bins`` bins; the medians of the first and second half of the bins
    are compared: drop = (m1 - m2) / |m1|, z = (m1 - m2) / standard error from the bins'
    spread. NaN with fewer than 4 finite bins.
    """
    b = binned(y, n_bins)
    b = b[np.isfinite(b)]
    if len(b) < 4:
        return float("nan"), float("nan")
    h = len(b) // 2
    first, second = b[:h], b[-h:]
    m1, m2 = float(np.mean(first)), float(np.mean(second))
    se = math.sqrt((np.var(first, ddof=1) + np.var(second, ddof=1)) / h)
    drop = (m1 - m2) / abs(m1) if m1 != 0 else float("nan")
    z = (m1 - m2) / se if se > 0 else (math.inf if m1 > m2 else 0.0)
    return float(drop), float(z)


@quiet
def rankdata(x: Any) -> np.ndarray:
    """Average ranks (1-based) of a 1-D array, ties sharing their mean rank."""
    a = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    sorted_a = a[order]
    # Boundaries of runs of equal values.
    start = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    ids = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    counts = np.diff(np.r_[first, len(a)])
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = mean_rank[ids]
    return ranks


@quiet
def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation of the finite pairs (NaN with fewer than 3 or no spread)."""
    xa, ya = as_float(x).ravel(), as_float(y).ravel()
    ok = np.isfinite(xa) & np.isfinite(ya)
    if ok.sum() < 3:
        return float("nan")
    rx, ry = rankdata(xa[ok]), rankdata(ya[ok])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


@quiet
def depth_profile(values: Any) -> tuple[float, float]:
    """``(span, rho)`` of positive per-layer values in model order.

    ``span`` = log10(last / first) of the finite positive values; ``rho`` = Spearman
    correlation of log value with depth (+1: values grow towards the output).
    """
    v = as_float(values).ravel()
    v = np.where(v > 0, v, np.nan)
    ok = np.flatnonzero(np.isfinite(v))
    if len(ok) < 2:
        return float("nan"), float("nan")
    span = float(np.log10(v[ok[-1]] / v[ok[0]]))
    return span, spearman(np.arange(len(v))[ok], np.log10(v[ok]))


@quiet
def global_norm(norms: Any) -> np.ndarray:
    """``(N,)`` root sum of squares across the second axis of ``(N, P)`` norms (NaN where all missing)."""
    if np.ndim(norms) == 1:
        return np.abs(as_float(norms))
    a = np.asarray(norms)
    bad = ~np.isfinite(a)
    missing = None
    if bad.any():
        a = np.where(bad, 0.0, a)
        missing = bad.all(axis=1)
    # squares summed in float64 (float32 norms of 1e20 would overflow), no float64 copy of ``a``
    out = np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64))
    if missing is not None:
        out[missing] = np.nan
    return out


@quiet
def ratio(num: Any, den: Any) -> np.ndarray:
    """Elementwise ``num / den`` with NaN where the denominator is 0 or either side is missing."""
    n, d = as_float(num), as_float(den)
    return np.where(d != 0, n / np.where(d != 0, d, 1.0), np.nan)


# --------------------------------------------------------------------------- weights
def fan_in(shape: Sequence[int]) -> int:
    """PyTorch's fan-in of a weight of ``shape``: ``shape[1] * prod(shape[2:])`` (1-D: its length)."""
    shape = tuple(int(s) for s in shape)
    if not shape:
        return 1
    if len(shape) == 1:
        return max(shape[0], 1)
    return max(int(np.prod(shape[1:])), 1)


def init_scale(std: Any, fan: Any) -> np.ndarray:
    """Weight std in units of ``1/sqrt(fan)``: ≈0.58 for PyTorch's default init, ≈1.4 for Kaiming."""
    return as_float(std) * np.sqrt(as_float(fan))


@quiet
def row_spread(w: Any) -> float:
    """How different the rows (units) of a weight are: max over columns of the std across rows,
    over the RMS of the matrix. 0 for identical rows (and for an all-zero matrix); NaN if not finite.

    ``w`` is viewed as ``(rows, -1)``; a 1-D or single-row tensor gives NaN.
    """
    a = as_float(w)
    if a.ndim < 2 or a.shape[0] < 2:
        return float("nan")
    a = a.reshape(a.shape[0], -1)
    if not np.isfinite(a).all():
        return float("nan")
    rms = float(np.sqrt(np.mean(a * a)))
    if rms == 0.0:
        return 0.0
    return float(np.max(np.std(a, axis=0)) / rms)


# --------------------------------------------------------------------------- losses
@quiet
def entropy(p: Any, axis: int = -1) -> np.ndarray:
    """Shannon entropy (nats) of probability vectors along ``axis`` (normalised first)."""
    a = np.clip(as_float(p), 0, None)
    s = np.nansum(a, axis=axis, keepdims=True)
    q = np.where(s > 0, a / np.where(s > 0, s, 1), 0)
    return -np.nansum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0), axis=axis)


@quiet
def constant_predictor_loss(loss_class: str, *, class_counts: Any = None, target_sample: Any = None
                            ) -> float:
    """Loss of the best input-independent prediction, for mean-reduced standard losses.

    Cross-entropy / NLL: entropy of the class frequencies ``class_counts`` (K,).
    BCE / BCEWithLogits: mean binary entropy of each column's mean target, from
    ``target_sample`` (rows, C). MSE: mean per-column variance; L1: mean absolute
    deviation from each column's median. NaN when unknown.
    """
    name = (loss_class or "").lower()
    if name in ("crossentropyloss", "nllloss") and class_counts is not None:
        c = as_float(class_counts).ravel()
        if np.nansum(c) <= 0:
            return float("nan")
        return float(entropy(np.nan_to_num(c)))
    if target_sample is None:
        return float("nan")
    t = as_float(target_sample)
    t = t.reshape(t.shape[0], -1) if t.ndim > 1 else t[:, None]
    t = t[np.isfinite(t).all(axis=1)]
    if len(t) < 2:
        return float("nan")
    if name in ("bcewithlogitsloss", "bceloss"):
        p = np.clip(t.mean(axis=0), 1e-12, 1 - 1e-12)
        if (t.min() < 0) or (t.max() > 1):
            return float("nan")
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    if name == "mseloss":
        return float(np.mean(t.var(axis=0)))
    if name == "l1loss":
        return float(np.mean(np.abs(t - np.median(t, axis=0)).mean(axis=0)))
    return float("nan")


@dataclass(frozen=True)
class LossProfile:
    """Summary of a loss curve; rows index the input array (``-1`` when absent).

    ``start``/``end`` are medians of the first/last few percent of finite rows,
    ``best`` the lowest bin median, ``mid`` the median around the middle row.
    """

    n: int
    first_nonfinite: int
    start: float
    mid: float
    end: float
    best: float
    best_row: int
    drop: float  # (start - end) / |start|: fraction of the initial loss removed
    late_drop: float  # (mid - end) / |mid|: fraction removed over the second half
    rise: float  # log10(end / best) when positive, else relative rise; 0 if none
    diverged: bool
    diverge_row: int  # first row of the final rise above 2x best, or of the non-finite loss
    jumpiness: float  # median |log(loss_i / loss_{i-1})|: step-to-step relative noise
    end_mean: float = float("nan")  # mean of the last tenth: spikes count here, not in ``end``
    swings: bool = False  # the late mean is ≥ 2x the initial loss although the median may be low

    @property
    def finite(self) -> bool:
        return self.first_nonfinite < 0


@quiet
def loss_profile(loss: Any) -> LossProfile:
    """Robust summary of a loss curve: start, end, best, drop, late drop, divergence."""
    a = as_float(np.asarray(loss, dtype=np.float64))
    raw = np.asarray(loss, dtype=np.float64)
    n = len(a)
    bad = ~np.isfinite(raw)
    first_bad = first_true(bad)
    upto = first_bad if first_bad >= 0 else n
    f = a[:upto]
    m = len(f)
    if m == 0:
        nan = float("nan")
        return LossProfile(n, first_bad, nan, nan, nan, nan, -1, nan, nan, 0.0, True, first_bad, nan)
    k_tail = max(1, m // 10)
    # The loss before any update: later rows may already be wrecked by a huge first step.
    start = float(f[0]) if np.isfinite(f[0]) else float(np.nanmedian(f[: max(1, min(m // 50, 50))]))
    end = float(np.nanmedian(f[-k_tail:]))
    half = m // 2
    w = max(1, m // 20)
    mid = float(np.nanmedian(f[max(0, half - w):half + w + 1]))
    n_bins = max(1, min(50, m // 4))
    b = binned(f, n_bins)
    edges = bin_edges(m, n_bins)
    bi = int(np.nanargmin(b)) if np.isfinite(b).any() else 0
    best = float(b[bi]) if np.isfinite(b).any() else end
    seg = f[edges[bi]:edges[bi + 1]]
    # The quoted best is a loss the run really had: the row of the best bin nearest its median.
    best_row = int(edges[bi] + (np.nanargmin(np.abs(seg - best)) if np.isfinite(seg).any() else 0))
    best = min(best, end)
    if np.isfinite(start) and start < best:
        best, best_row = start, 0
    drop = (start - end) / abs(start) if start != 0 else float("nan")
    late_drop = (mid - end) / abs(mid) if mid != 0 else float("nan")
    if best > 0 and end > 0:
        rise = float(np.log10(end / best))
    else:
        scale = max(abs(start - best), abs(best), 1e-12)
        rise = float((end - best) / scale)
    # Diverged: the loss ends well above its best, by a margin that matters against the
    # initial scale (a loss wobbling at 1e-6 after converging from 2.3 is not diverging).
    margin = end - best >= 0.1 * max(abs(start - best), abs(best), 1e-12)
    grew = (end >= 2 * best) if best > 0 else (rise >= 1.0)
    # Swings: the median may look converged while large spikes make the average late loss
    # worse than the untrained model's (an optimiser bouncing between huge-margin fits).
    end_mean = float(np.nanmean(f[-k_tail:]))
    swings = bool(start > 0 and end_mean >= 2 * start)
    diverged = bool((margin and grew) or first_bad >= 0 or swings)
    diverge_row = first_bad
    if margin and grew:
        above = f > max(2 * best, best + 0.5 * (end - best)) if best > 0 else f > best + 0.5 * (end - best)
        diverge_row = persistent_onset(above & np.isfinite(f), min_frac=0.8)
        diverge_row = diverge_row if diverge_row >= 0 else best_row
    elif swings and first_bad < 0:
        diverge_row = max(first_true(f >= 2 * start), 0)
    pos = f[np.isfinite(f) & (f > 0)]
    jump = float(np.median(np.abs(np.diff(np.log(pos))))) if len(pos) > 2 else float("nan")
    return LossProfile(n, first_bad, start, mid, end, best, best_row, float(drop), float(late_drop),
                       float(rise), diverged, int(diverge_row), jump, end_mean, swings)
