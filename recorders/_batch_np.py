"""Batch summaries of CPU runs, computed by the writer thread on blocks of steps at once.

The training thread only copies a bounded row sample of what ``rec.step`` was given
(``BatchSummaries.copies``); here a run of steps with equal shapes is stacked to
``(n, rows, columns)`` and every summary is one numpy call over the whole block, so the
per-step cost is a copy. Torch-free; values match ``BatchSummaries`` (tests check both).
"""

from __future__ import annotations

from itertools import groupby

import numpy as np

QUIET = {"all": "ignore"}


def _pad(a: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
    """``a`` (n, ...) top-left in a NaN array of shape ``(n, *tail)``."""
    shape = (a.shape[0], *tail)
    if a.shape == shape:
        return a
    out = np.full(shape, np.nan)
    idx = (slice(None), *(slice(0, min(x, y)) for x, y in zip(a.shape[1:], tail)))
    out[idx] = a[idx]
    return out


def _mean_std(a: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std over ``axis`` from float64 sums."""
    n = max(int(np.prod([a.shape[i] for i in (axis if isinstance(axis, tuple) else (axis,))])), 1)
    mean = a.sum(axis=axis) / n
    var = (a * a).sum(axis=axis) / n - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _counts(labels: np.ndarray, k: int) -> np.ndarray:
    """Per-row counts of ``0..k-1`` in ``labels`` (n, m) int: (n, k) float64."""
    n = labels.shape[0]
    flat = (labels + k * np.arange(n)[:, None]).reshape(-1)
    return np.bincount(flat, minlength=n * k)[: n * k].reshape(n, k).astype(np.float64)


def _nonfinite(a: np.ndarray) -> np.ndarray:
    per = a[0].size
    return (per - np.isfinite(a).reshape(a.shape[0], -1).sum(axis=1)).astype(np.float64)


def _max_last(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=-1)``; a narrow last axis elementwise over its columns (numpy reduces a
    short contiguous axis one element at a time)."""
    if a.shape[-1] > 8 or a.shape[-1] == 0:
        return a.max(axis=-1)
    out = a[..., 0].copy()
    for j in range(1, a.shape[-1]):
        np.maximum(out, a[..., j], out=out)
    return out


def outputs(o: np.ndarray, rows: int, c: int) -> np.ndarray:
    """``(n, r, C)`` outputs -> ``(n, size)`` in the layout's field order."""
    n, r, cols = o.shape
    kept = o[:, :, :c]
    mean, std = _mean_std(kept, 1)
    if cols > 1:
        hist = _counts(np.minimum(o.argmax(axis=2), c - 1), c)
    else:
        hist = np.zeros((n, c))
    rs_mean, rs_std = _mean_std(o.sum(axis=2), 1)
    row_max = _max_last(o)
    mn, mx = o.min(axis=(1, 2)), row_max.max(axis=1)
    in01 = ((o >= 0) & (o <= 1)).sum(axis=(1, 2)) / max(r * cols, 1)
    shifted = np.exp(o - row_max[:, :, None])
    maxprob = (1.0 / shifted.sum(axis=2)).mean(axis=1)
    tail = np.stack([rs_mean, rs_std, mn, mx, in01, maxprob, _nonfinite(o)], axis=1)
    sample = _pad(o[:, :rows, :c], (rows, c)).reshape(n, -1)
    return np.hstack([sample, _pad(mean, (c,)), _pad(std, (c,)), hist, tail])


def targets(raw: np.ndarray, rows: int, c: int, kind: str, k: int) -> np.ndarray:
    """``(n, r, C_t)`` targets (their own dtype) -> ``(n, size)``."""
    n = raw.shape[0]
    tf = raw.astype(np.float64)
    if kind == "index":
        if raw.dtype.kind in "iu":
            hist = _counts(np.clip(raw.reshape(n, -1), -1, k - 1).astype(np.int64) + 1, k + 1)[:, 1:]
        else:
            hist = np.full((n, k), np.nan)
    else:
        hist = _pad(tf[:, :, :k].sum(axis=1), (k,))
    mean, std = _mean_std(tf, (1, 2))
    tail = np.stack([mean, std, tf.min(axis=(1, 2)), tf.max(axis=(1, 2)), _nonfinite(tf)], axis=1)
    return np.hstack([_pad(tf[:, :rows, :c], (rows, c)).reshape(n, -1), hist, tail])


def inputs(
    items: list[tuple], rows: int, f: int, index: np.ndarray, stacked: np.ndarray | None = None
) -> np.ndarray:
    """Input items of one kind and shape -> ``(n, size)``.

    ``("full", x (r, D))``: every feature; the kept ones are ``index``. ``("kept", x (r, F),
    scalars (4,))``: wide inputs, the scalars over the
    whole row sample were taken on the training thread. ``("nofeat", scalars)``: a batch
    whose feature count differs from the first one's.
    """
    kind = items[0][0]
    n = len(items) if stacked is None else stacked.shape[0]
    if kind == "nofeat":
        nan = np.full((n, rows * f + 2 * f), np.nan)
        return np.hstack([nan, np.stack([it[1] for it in items])])
    x = np.stack([it[1] for it in items]) if stacked is None else stacked
    r = max(x.shape[1], 1)
    s1 = x.sum(axis=1, dtype=np.float64)  # (n, D): one pass for the features and the totals
    xf = x if x.dtype.kind == "f" else x.astype(np.float64)
    s2 = np.einsum("nrd,nrd->nd", xf, xf, dtype=np.float64)
    every = kind == "kept" or x.shape[2] == f
    pick = slice(None) if every else index
    fmean = s1[:, pick] / r
    fstd = np.sqrt(np.maximum(s2[:, pick] / r - fmean * fmean, 0.0))
    if kind == "kept":
        tail = np.stack([it[2] for it in items])
    else:
        m = max(x.shape[1] * x.shape[2], 1)
        mean = s1.sum(axis=1) / m
        std = np.sqrt(np.maximum(s2.sum(axis=1) / m - mean * mean, 0.0))
        flat = x.reshape(n, -1)
        maxabs = np.maximum(np.abs(flat.min(axis=1)), np.abs(flat.max(axis=1))).astype(np.float64)
        finite = np.isfinite(mean) & np.isfinite(std)
        nonfinite = np.where(finite, 0.0, _nonfinite(x)) if not finite.all() else np.zeros(n)
        tail = np.stack([mean, std, maxabs, nonfinite], axis=1)
    sel = x[:, :rows] if every else x[:, :rows][:, :, index]
    return np.hstack([_pad(sel.astype(np.float64), (rows, f)).reshape(n, -1), fmean, fstd, tail])


def inputs_full(x: np.ndarray, rows: int, f: int, index: np.ndarray) -> np.ndarray:
    """``(n, r, D)`` inputs with every feature -> ``(n, size)`` (see :func:`inputs`)."""
    return inputs([("full", x)], rows, f, index, stacked=x)


def _key(item) -> tuple:
    if item is None:
        return (None,)
    if isinstance(item, tuple):
        return (item[0], *(np.shape(a) for a in item[1:]), *(a.dtype.str for a in item[1:2]))
    return ("a", item.shape, item.dtype.str)


def block(items: list, size: int, fn) -> np.ndarray:
    """``fn`` over runs of items with equal shapes; NaN rows for absent items."""
    if items and all(type(it) is np.ndarray for it in items):
        if len({(it.shape, it.dtype) for it in items}) == 1:  # the usual case: one run
            with np.errstate(**QUIET):
                return fn(items)
    out = []
    for key, run in groupby(items, key=_key):
        run = list(run)
        if key[0] is None:
            out.append(np.full((len(run), size), np.nan))
        else:
            with np.errstate(**QUIET):
                out.append(fn(run))
    return np.vstack(out) if out else np.zeros((0, size))
