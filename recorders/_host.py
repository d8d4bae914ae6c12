"""The CPU fast path: the same raw statistics as ``_stats``/``_batch``, as numpy on the host.

On CPU a device->host copy is free and torch's per-op dispatch (a few microseconds) is
what a small model's step pays for, so here each statistic is one numpy call (or one
torch call where torch's kernel is faster, on large tensors) returning a Python number,
and rows are numpy arrays. Values match the torch path (tests check both).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from recorders import _stats

FAST = (torch.float32, torch.float64)
F = TypeVar("F", bound=Callable[..., Any])


def _quiet(fn: F) -> F:
    """No numpy RuntimeWarnings: NaN/Inf are values to record, not problems."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


SMALL = 4096  # below: numpy's lower call overhead wins
LARGE = 1 << 20  # above: torch's aminmax beats numpy's min + max


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A read-only numpy view of a CPU tensor (float32 copy for half types)."""
    t = t.detach()
    if t.is_floating_point() and t.dtype not in FAST:
        t = t.float()
    return t.numpy()


def _sum(t: torch.Tensor, a: np.ndarray) -> float:
    return float(a.sum(dtype=np.float64)) if a.size < SMALL else float(t.sum())


def _sumsq(t: torch.Tensor, a: np.ndarray) -> float:
    if a.flags.c_contiguous and a.dtype.kind == "f":
        v = a.reshape(-1)
        return float(np.dot(v, v))
    return float(torch.linalg.vector_norm(t.float() if not t.is_floating_point() else t)) ** 2


def _minmax(t: torch.Tensor, a: np.ndarray) -> tuple[float, float]:
    if a.size == 0:
        return math.nan, math.nan
    if a.size >= LARGE:
        mn, mx = torch.aminmax(t)
        return float(mn), float(mx)
    return float(a.min()), float(a.max())


def count_zeros(a: np.ndarray) -> int:
    return int(np.count_nonzero(a == 0))


def count_nonfinite(a: np.ndarray) -> int:
    return int(a.size - np.count_nonzero(np.isfinite(a)))


# ----------------------------------------------------------------------------- parameters


@_quiet
def param_raw(ws: list[torch.Tensor], gs: list[torch.Tensor | None]) -> np.ndarray:
    """Host version of :func:`recorders._stats.param_raw`: float64 ``(len(PARAM_RAW) * P,)``."""
    p = len(ws)
    out = np.full((len(_stats.PARAM_RAW), p), np.nan)
    if p == 0:
        return out.reshape(-1)
    pr = _stats.PR
    wf = [_stats._fast(w) for w in ws]
    out[pr["w_norm"]] = torch.stack(torch._foreach_norm(wf)).numpy()
    out[pr["w_nonfinite"]] = 0
    out[pr["g_zeros"]] = 0
    out[pr["g_nonfinite"]] = 0
    out[pr["g_present"]] = 0
    present = [i for i, g in enumerate(gs) if g is not None]
    gf = {i: _stats._grad_values(gs[i]) for i in present}  # type: ignore[arg-type]
    if gf:
        norms = torch.stack(torch._foreach_norm(list(gf.values()))).numpy()
        out[pr["g_norm"], present] = norms
    for i, w in enumerate(wf):
        a = w.numpy()
        out[pr["w_sum"], i] = _sum(w, a)
        out[pr["w_min"], i], out[pr["w_max"], i] = _minmax(w, a)
        if not math.isfinite(out[pr["w_norm"], i]):
            out[pr["w_nonfinite"], i] = count_nonfinite(a)
    for i, g in gf.items():
        a = g.numpy()
        out[pr["g_present"], i] = 1
        out[pr["g_min"], i], out[pr["g_max"], i] = _minmax(g, a)
        out[pr["g_zeros"], i] = count_zeros(a) + (ws[i].numel() - g.numel())
        if not math.isfinite(out[pr["g_norm"], i]):
            out[pr["g_nonfinite"], i] = count_nonfinite(a)
    return out.reshape(-1)


# ----------------------------------------------------------------------------- activations


@_quiet
def act_call_raw(
    x: torch.Tensor, unit_dim: int | None, bounds: tuple[float, float] | None, nonneg: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Host version of :func:`recorders._stats.act_call_raw`."""
    xf = _stats._fast(x)
    a = xf.numpy()
    n = a.size
    s = _sum(xf, a)
    q = _sumsq(xf, a)
    alive = None
    units = dead = math.nan
    if unit_dim is not None and a.ndim >= 2 and n:
        if unit_dim == 1 and a.ndim >= 3:
            umax, umin = _unit_extrema(xf, (a.shape[0], a.shape[1], -1), nonneg, channel=True)
        else:
            umax, umin = _unit_extrema(xf, (-1, a.shape[-1]), nonneg, channel=False)
        alive = umax != 0 if umin is None else (umax != 0) | (umin != 0)
        mx = float(umax.max())
        mn = 0.0 if umin is None else float(umin.min())
        units, dead = alive.size, alive.size - int(np.count_nonzero(alive))
    elif n:
        mn, mx = _minmax(xf, a)
    else:
        mn = mx = math.nan
    sat = math.nan if bounds is None else _count_saturated(a, bounds)
    nonfinite = 0 if math.isfinite(s) and math.isfinite(q) else count_nonfinite(a)
    raw = np.array([n, s, q, mn, mx, count_zeros(a), sat, nonfinite, units, dead], np.float64)
    return raw, alive


def _unit_extrema(xf: torch.Tensor, shape: tuple[int, ...], nonneg: bool, channel: bool):
    """Per-unit max (and min unless ``nonneg``) as numpy arrays."""
    if xf.numel() < LARGE // 8:
        v = xf.numpy().reshape(shape)
        if channel:
            umax = v.max(axis=2).max(axis=0)
            umin = None if nonneg else v.min(axis=2).min(axis=0)
        else:
            umax = v.max(axis=0)
            umin = None if nonneg else v.min(axis=0)
        return umax, umin
    v = xf.reshape(shape)
    if channel:
        umax = v.amax(dim=2).amax(dim=0).numpy()
        umin = None if nonneg else v.amin(dim=2).amin(dim=0).numpy()
    else:
        umax = v.amax(dim=0).numpy()
        umin = None if nonneg else v.amin(dim=0).numpy()
    return umax, umin


def _count_saturated(a: np.ndarray, bounds: tuple[float, float]) -> int:
    lo, hi = bounds
    eps = 0.01 * (hi - lo)
    return int(np.count_nonzero(a <= lo + eps) + np.count_nonzero(a >= hi - eps))


@_quiet
def combine_calls(raws: list[np.ndarray], alive: np.ndarray | None) -> np.ndarray:
    """Host version of :func:`recorders._stats.combine_calls`."""
    if len(raws) == 1:
        return raws[0]
    st = np.stack(raws)
    total = st.sum(axis=0)
    mr = _stats.MR
    total[mr["min"]] = st[:, mr["min"]].min()
    total[mr["max"]] = st[:, mr["max"]].max()
    if alive is None:
        total[mr["units"]] = total[mr["dead"]] = math.nan
    else:
        total[mr["units"]] = alive.size
        total[mr["dead"]] = alive.size - np.count_nonzero(alive)
    return total


# ----------------------------------------------------------------------------- grad probe


@_quiet
def grad_carry(g: torch.Tensor, incoming: torch.Tensor) -> float:
    """Host version of :meth:`recorders._hooks.GradProbe.measure`."""
    gd = as_numpy(g.to_dense() if g.is_sparse else g).astype(np.float64).reshape(-1)
    s = incoming.numpy().reshape(-1)
    gn = float(np.sqrt(np.dot(gd, gd)))
    sn = float(np.sqrt(np.dot(s, s)))
    if sn > 0 and float(np.dot(gd, s)) >= (1 - 1e-6) * gn * sn:
        return 0.0
    d = gd - s
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sqrt(np.dot(d, d)) / gn) if gn > 0 else math.nan


# ----------------------------------------------------------------------------- batches


def _padded(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.full(shape, np.nan)
    idx = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, shape))
    out[idx] = a[idx]
    return out


def _mean_std(a: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std from float64 sums."""
    a64 = a.astype(np.float64, copy=False)
    n = max(a.size if axis is None else a.shape[axis], 1)
    mean = a64.sum(axis=axis) / n
    var = (a64 * a64).sum(axis=axis) / n - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _float2d(t: torch.Tensor, rows_first: bool) -> np.ndarray:
    """``t`` as a 2-D float numpy array: inputs ``(B, D)`` or outputs/targets ``(rows, C)``."""
    if t.dim() == 0:
        t = t.reshape(1, 1)
    elif rows_first:
        t = t.reshape(t.shape[0], -1)
    else:
        t = t.reshape(-1, 1) if t.dim() == 1 else t.reshape(-1, t.shape[-1])
    a = as_numpy(t)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


@_quiet
def outputs(o: torch.Tensor, rows: int, c: int) -> list[np.ndarray]:
    """Host version of ``BatchSummaries._outputs``."""
    o2 = _float2d(o, rows_first=False)
    kept = o2[:, :c]
    mean, std = _mean_std(kept, axis=0)
    if o2.shape[1] > 1:
        am = np.minimum(o2.argmax(axis=1), c - 1)
        hist = np.bincount(am, minlength=c)[:c].astype(np.float64)
    else:
        hist = np.zeros(c)
    rs_mean, rs_std = _mean_std(o2.sum(axis=1, dtype=np.float64))
    mn, mx = float(o2.min()), float(o2.max())
    in01 = np.count_nonzero((o2 >= 0) & (o2 <= 1)) / o2.size
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = np.exp(o2 - o2.max(axis=1, keepdims=True))
        maxprob = float(np.mean(1.0 / shifted.sum(axis=1, dtype=np.float64)))
    tail = np.array([rs_mean, rs_std, mn, mx, in01, maxprob, count_nonfinite(o2)], np.float64)
    return [_padded(o2[:rows, :c], (rows, c)), _padded(mean, (c,)), _padded(std, (c,)), hist, tail]


@_quiet
def targets(t: torch.Tensor, rows: int, c: int, kind: str, k: int) -> list[np.ndarray]:
    """Host version of ``BatchSummaries._targets``."""
    raw = as_numpy(t.reshape(-1, 1) if t.dim() <= 1 else t.reshape(-1, t.shape[-1]))
    tf = raw if raw.dtype.kind == "f" else raw.astype(np.float64)
    if kind == "index":
        if raw.dtype.kind in "iu":
            lab = np.clip(raw.reshape(-1), -1, k - 1) + 1
            hist = np.bincount(lab, minlength=k + 1)[1:].astype(np.float64)
        else:
            hist = np.full(k, np.nan)
    else:
        hist = _padded(tf[:, :k].sum(axis=0, dtype=np.float64), (k,))
    mean, std = _mean_std(tf)
    tail = np.array([mean, std, tf.min(), tf.max(), count_nonfinite(tf)], np.float64)
    return [_padded(tf[:rows, :c], (rows, c)), hist, tail]


@_quiet
def inputs(x: torch.Tensor, rows: int, f: int, width: int, index: np.ndarray) -> list[np.ndarray]:
    """Host version of ``BatchSummaries._inputs``."""
    x2 = _float2d(x, rows_first=True)
    if x2.shape[1] == width:
        sel = x2 if f == width else x2[:, index]
        sample = _padded(sel[:rows], (rows, f))
        fmean, fstd = _mean_std(sel, axis=0)
    else:
        sample, fmean, fstd = np.full((rows, f), np.nan), np.full(f, np.nan), np.full(f, np.nan)
    xt = torch.from_numpy(x2)
    n = max(x2.size, 1)
    s, q = _sum(xt, x2), _sumsq(xt, x2)
    mean = s / n
    std = math.sqrt(max(q / n - mean * mean, 0.0)) if math.isfinite(q) else math.nan
    mn, mx = _minmax(xt, x2)
    nonfinite = 0 if math.isfinite(s) and math.isfinite(q) else count_nonfinite(x2)
    tail = np.array([mean, std, max(abs(mn), abs(mx)), nonfinite], np.float64)
    return [sample, fmean, fstd, tail]
