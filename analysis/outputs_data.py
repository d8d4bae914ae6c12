"""What the outputs view says and draws at one step: pure numpy, no Qt.

Three traps the view must not fall into: outputs that already are probabilities (a
Softmax layer before the loss) must not be squashed a second time, so the recorded
``softmax_maxprob`` is not used for them; rows holding NaN/Inf have no predicted class
(``argmax`` of a NaN row is 0, which reads as "predicts class 0 for 100 % of rows");
and a regression that blew up to 1e27 must not drag the scatter's axes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.views_data import softmax

PROB_TOL = 1e-3


def are_probabilities(out: np.ndarray) -> bool:
    """Whether every finite row lies in [0, 1] and sums to 1 (within 1e-3): already probabilities."""
    out = np.asarray(out, dtype=np.float64)
    rows = np.isfinite(out).all(axis=-1)
    if out.ndim != 2 or out.shape[1] < 2 or not rows.any():
        return False
    good = out[rows]
    if good.min() < 0.0 or good.max() > 1.0:
        return False
    return bool(np.all(np.abs(good.sum(axis=-1) - 1.0) < PROB_TOL))


@dataclass
class ClassReadout:
    """The classification readout at one step (``counts`` per class, ``top`` = -1 when none)."""

    probs: np.ndarray  # (R, C) display probabilities (NaN rows stay NaN)
    already_probs: bool  # outputs were probabilities as recorded (no softmax applied)
    counts: np.ndarray  # (C,) predicted-class counts over rows with finite outputs
    counts_source: str  # "batch" (recorded over the whole batch) or "sample" (finite sampled rows)
    top: int
    share: float  # share of counted rows predicting ``top``
    maxprob: float  # mean over finite rows of each row's largest probability
    bad_rows: int  # sampled rows holding NaN/Inf
    rows: int


def class_readout(out: np.ndarray, counts: np.ndarray | None = None, maxprob: float | None = None,
                  nonfinite: float | None = None) -> ClassReadout:
    """Readout from the sampled ``(R, C)`` outputs and, when recorded, the whole batch's figures.

    ``counts``/``maxprob``/``nonfinite`` are the recorder's batch ``argmax_hist``,
    ``softmax_maxprob`` and non-finite count; they are used only when they can be trusted:
    no NaN/Inf anywhere in the batch, and (for ``maxprob``) outputs that are logits.
    """
    out = np.asarray(out, dtype=np.float64)
    rows, classes = out.shape
    finite = np.isfinite(out).all(axis=-1)
    already = are_probabilities(out)
    probs = np.where(finite[:, None], out, np.nan) if already else softmax(out)
    clean = bool(finite.all()) and not (nonfinite is not None and np.isfinite(nonfinite) and nonfinite > 0)
    if counts is not None and clean:
        c, source = np.asarray(counts, dtype=np.float64), "batch"
    else:
        picked = np.argmax(out[finite], axis=-1) if finite.any() else np.zeros(0, np.int64)
        c, source = np.bincount(picked, minlength=classes).astype(np.float64), "sample"
    total = float(np.nansum(c))
    top = int(np.argmax(c)) if c.size and total > 0 else -1
    share = float(c[top] / total) if top >= 0 else float("nan")
    if maxprob is not None and np.isfinite(maxprob) and clean and not already:
        mp = float(maxprob)
    else:
        best = np.max(probs[finite], axis=-1) if finite.any() else np.zeros(0)
        mp = float(best.mean()) if best.size else float("nan")
    return ClassReadout(probs, already, c, source, top, share, mp, int((~finite).sum()), rows)


@dataclass
class ScatterFrame:
    """Robust axis limits for outputs-vs-targets and the points drawn, clamped to them."""

    lo: float
    hi: float
    x: np.ndarray  # finite points, clamped into [lo, hi]
    y: np.ndarray
    off: np.ndarray  # bool: the point lay outside the limits (drawn on the edge, marked)
    worst: float  # largest |value| among off-scale points (NaN when none)
    bad: int  # points with a NaN/Inf output or target (not drawn)


def fenced_range(v: np.ndarray, k: float = 3.0) -> tuple[float, float]:
    """``(min, max)`` of the finite values inside Tukey's far fences ``Q1 − k·IQR``, ``Q3 + k·IQR``."""
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    q1, q3 = np.percentile(v, [25, 75])
    iqr = q3 - q1
    inside = v[(v >= q1 - k * iqr) & (v <= q3 + k * iqr)]
    return float(inside.min()), float(inside.max())


def scatter_frame(x: np.ndarray, y: np.ndarray, pad: float = 0.08) -> ScatterFrame:
    """One square frame for both axes: the targets' range and the outputs inside Tukey's far fences.

    A blown-up output (1e27) stays a marked point on the frame's edge instead of
    stretching the axes over twenty-seven decades.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    ok = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[ok], y[ok]
    if not xs.size:
        return ScatterFrame(0.0, 1.0, xs, ys, np.zeros(0, bool), float("nan"), int((~ok).sum()))
    y_lo, y_hi = fenced_range(ys)
    x_lo, x_hi = fenced_range(xs)
    lo, hi = min(x_lo, y_lo), max(x_hi, y_hi)
    if hi <= lo:
        lo, hi = lo - max(abs(lo) * 0.5, 0.5), hi + max(abs(hi) * 0.5, 0.5)
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    off = (xs < lo) | (xs > hi) | (ys < lo) | (ys > hi)
    worst = float(np.max(np.maximum(np.abs(xs[off]), np.abs(ys[off])))) if off.any() else float("nan")
    return ScatterFrame(lo, hi, np.clip(xs, lo, hi), np.clip(ys, lo, hi), off, worst, int((~ok).sum()))
