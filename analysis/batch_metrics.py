"""Maths on the batch summaries (outputs, targets, inputs) for the data/loss detectors.

Numpy in, numpy out; no ``Trace`` here (the reading lives in ``analysis/detectors/_data.py``).
Every reduction is NaN-aware and silent: rows where an argument was not passed to
``rec.step`` are NaN, and empty selections give NaN rather than a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

# Losses that apply their own normalisation to what they are given.
LOGIT_LOSSES = {"CrossEntropyLoss": "softmax", "BCEWithLogitsLoss": "sigmoid",
                "MultiLabelSoftMarginLoss": "sigmoid"}
# Losses that expect log-probabilities.
LOGPROB_LOSSES = ("NLLLoss", "KLDivLoss")
# Element-wise regression losses: they broadcast mismatched shapes (with only a warning).
ELEMENTWISE_LOSSES = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")
CLASSIFICATION_LOSSES = ("CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss",
                         "MultiLabelSoftMarginLoss", "MultiMarginLoss", "FocalLoss")

# Output activations and the interval their output lies in (None = unbounded that side).
ACTIVATION_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "ReLU": (0.0, None), "ReLU6": (0.0, 6.0), "Softplus": (0.0, None), "Sigmoid": (0.0, 1.0),
    "Hardsigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardtanh": (-1.0, 1.0), "Softsign": (-1.0, 1.0),
    "Softmax": (0.0, 1.0), "ELU": (-1.0, None), "CELU": (-1.0, None), "SELU": (-1.7581, None),
    "Tanhshrink": (None, None), "Threshold": (None, None),
}


def quiet(fn, *args, **kwargs):
    """Call a numpy reduction with its empty-slice / invalid-value warnings silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def nanmedian(x, axis=None) -> np.ndarray | float:
    return quiet(np.nanmedian, np.asarray(x, dtype=np.float64), axis=axis)


def nanmean(x, axis=None) -> np.ndarray | float:
    return quiet(np.nanmean, np.asarray(x, dtype=np.float64), axis=axis)


def nanmax(x, axis=None) -> np.ndarray | float:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.nan
    return quiet(np.nanmax, np.where(np.isnan(x), np.nan, x), axis=axis)


def nanmin(x, axis=None) -> np.ndarray | float:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.nan
    return quiet(np.nanmin, x, axis=axis)


def finite(x) -> np.ndarray:
    """The finite values of ``x``, flattened, as float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def frac(mask) -> float:
    """Share of True in a boolean array (NaN when empty)."""
    mask = np.asarray(mask, dtype=bool)
    return float(mask.mean()) if mask.size else math.nan


# ----------------------------------------------------------------------------- outputs
def softmax_rows(row_sum_mean, row_sum_std, frac_in_01, tol: float = 1e-3) -> np.ndarray:
    """Per step: every element in [0, 1] and every row summing to 1 (a softmax output)."""
    rsm, rss, f01 = (np.asarray(a, dtype=np.float64) for a in (row_sum_mean, row_sum_std, frac_in_01))
    with np.errstate(invalid="ignore"):
        return (f01 >= 1 - 1e-9) & (np.abs(rsm - 1) <= tol) & (rss <= tol)


def unit_interval(frac_in_01, out_min=None, out_max=None) -> np.ndarray:
    """Per step: every element of the outputs in [0, 1] (probabilities, e.g. a sigmoid)."""
    ok = np.asarray(frac_in_01, dtype=np.float64) >= 1 - 1e-9
    if out_min is not None and out_max is not None:
        with np.errstate(invalid="ignore"):
            ok &= (np.asarray(out_min) >= 0) & (np.asarray(out_max) <= 1)
    return ok


def double_softmax_floor(columns: int, kind: str) -> float:
    """The least loss a logit loss can give when fed probabilities instead of logits.

    Cross-entropy over ``columns`` softmax probabilities p: ``-p_y + log Σ e^{p_j}`` is
    smallest at a one-hot row, ``log(1 + (C − 1)/e)``. Binary cross-entropy with logits
    on p ∈ [0, 1]: ``log(1 + e^{-1})`` (target 1, p = 1).
    """
    if kind == "sigmoid":
        return math.log1p(math.exp(-1.0))
    return math.log1p(max(columns - 1, 1) / math.e)


def to_logits(sample: np.ndarray, softmax: bool, sigmoid: bool) -> np.ndarray:
    """Sampled outputs ``(..., C)`` mapped back to logit space (log p, or logit p), clipped."""
    x = np.asarray(sample, dtype=np.float64)
    if softmax:
        return np.log(np.clip(x, 1e-12, 1.0))
    if sigmoid:
        p = np.clip(x, 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)
    return x


def class_shares(hist: np.ndarray) -> np.ndarray:
    """``(K,)`` share of each class in a ``(N, K)`` count table (NaN rows skipped)."""
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim == 1:
        h = h[None]
    h = np.where(np.isfinite(h), h, 0.0)
    tot = h.sum()
    return h.sum(axis=0) / tot if tot > 0 else np.zeros(h.shape[-1])


def binary_shares(values: np.ndarray, threshold: float) -> np.ndarray:
    """``[share ≤ threshold, share > threshold]`` of the finite values."""
    v = finite(values)
    if not v.size:
        return np.zeros(2)
    pos = float((v > threshold).mean())
    return np.array([1 - pos, pos])


def row_spread(sample: np.ndarray) -> np.ndarray:
    """Per step: RMS over columns of the std across sampled rows, ``(N, R, C)`` → ``(N,)``."""
    s = np.asarray(sample, dtype=np.float64)
    return np.sqrt(nanmean(quiet(np.nanvar, s, axis=1), axis=-1))


# ----------------------------------------------------------------------------- inputs and targets
def feature_scale(feat_mean: np.ndarray, feat_std: np.ndarray) -> np.ndarray:
    """``(F,)`` typical size of each input feature over the steps given: the root of the median
    over steps of mean² + std² (a median, so one corrupt batch does not set the scale)."""
    m, s = np.asarray(feat_mean, np.float64), np.asarray(feat_std, np.float64)
    return np.sqrt(nanmedian(m * m + s * s, axis=0))


def row_feature_scale(feat_mean: np.ndarray, feat_std: np.ndarray) -> np.ndarray:
    """``(N,)`` per step, the largest feature size sqrt(mean² + std²) of the batch (NaN rows kept)."""
    m, s = np.asarray(feat_mean, np.float64), np.asarray(feat_std, np.float64)
    return np.sqrt(nanmax(m * m + s * s, axis=1))


def correlation_ratio(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the share of its variance *within* classes, and η² = 1 − that share.

    ``x`` is ``(n, F)``, ``labels`` ``(n,)`` integer. A feature that is a function of the
    label (a copy, a scaled copy, a one-hot column of it) has zero within-class variance.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    total = ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    within = np.zeros(x.shape[1])
    for c in np.unique(labels):
        xc = x[labels == c]
        within += ((xc - xc.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, within / total, np.nan)
    return share, 1 - share


def abs_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(F,)`` |Pearson r| between each column of ``x (n, F)`` and ``y (n,)`` (NaN if constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    den = np.sqrt((xc * xc).sum(axis=0) * (yc * yc).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, np.abs((xc * yc[:, None]).sum(axis=0)) / den, np.nan)


def broadcast_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """numpy/torch broadcasting of two shapes, or None when they cannot broadcast."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        return None


def loss_floor_share(loss: np.ndarray, floor: float, rel: float = 0.02) -> float:
    """Share of finite losses at or above ``floor`` (with a relative tolerance)."""
    v = finite(loss)
    return frac(v >= floor * (1 - rel) - 1e-9) if v.size else math.nan


def rolling_median(x, k: int) -> np.ndarray:
    """Trailing median over ``k`` values (fewer at the start), NaN-aware: ``(n,)`` → ``(n,)``."""
    x = np.asarray(x, dtype=np.float64)
    k = max(1, min(int(k), len(x)))
    if len(x) == 0 or k == 1:
        return x.copy()
    padded = np.concatenate([np.full(k - 1, np.nan), x])
    return nanmedian(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1)


def initial_level(loss: np.ndarray, k: int = 5) -> float:
    """Median of the first ``k`` finite losses: the loss before training has done much."""
    v = finite(loss)
    return float(np.median(v[:k])) if v.size else math.nan


def fmt(x: float, digits: int = 3) -> str:
    """A number for evidence text: ``0.123``, ``1.2e-07``, ``3.4e+04``."""
    if x is None or not np.isfinite(x):
        return str(x)
    ax = abs(x)
    if ax != 0 and (ax < 1e-3 or ax >= 1e4):
        return f"{x:.{max(digits - 2, 1)}e}"
    return f"{x:.{digits}g}"
