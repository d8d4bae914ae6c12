"""The CPU fast path: the same raw statistics as ``_stats``/``_batch``, as numpy on the host.

On CPU a device->host copy is free and torch's per-op dispatch (a few microseconds) is
what a small model's step pays for, so here each statistic is one numpy call (or one
torch call where torch's kernel is faster, on large tensors) returning a Python number,
and rows are numpy arrays. Values match the torch path (tests check both).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from recorders import _stats

FAST = (torch.float32, torch.float64)
SMALL = 4096  # below: numpy's lower call overhead wins for sums
LARGE = 1 << 18  # above: torch's aminmax beats numpy's min + max
QUIET = {"all": "ignore"}  # np.errstate: NaN/Inf are values to record, not warnings


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A read-only numpy view of a CPU tensor (float32 copy for half types)."""
    if t.requires_grad:
        t = t.detach()
    if t.is_floating_point() and t.dtype not in FAST:
        t = t.float()
    return t.numpy()


def as_2d(t: torch.Tensor) -> torch.Tensor:
    """Leading dims folded into rows, the last dim as columns: ``(B,)`` -> ``(B, 1)``."""
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(-1, 1)
    return t.reshape(math.prod(t.shape[:-1]), t.shape[-1])


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """A batch flattened to ``(B, D)`` (a scalar to ``(1, 1)``)."""
    if t.dim() == 0:
        return t.reshape(1, 1)
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def _sum(t: torch.Tensor, a: np.ndarray) -> float:
    return float(a.sum(dtype=np.float64)) if a.size < SMALL else float(t.sum())


def _sumsq(t: torch.Tensor, a: np.ndarray) -> float:
    if a.flags.c_contiguous and a.dtype.kind == "f":
        v = a.reshape(-1)
        return float(np.dot(v, v))
    return float(torch.linalg.vector_norm(t if t.is_floating_point() else t.float())) ** 2


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


FLAT = 1 << 16  # tensors up to this many elements are reduced together, as one flat array


def _stats_of(ts: list[torch.Tensor], grads: bool) -> tuple[list[float], ...]:
    """Per tensor: L2 norm, sum (weights) or zero count (grads), min, max, non-finite count.

    The small tensors are concatenated and reduced segment-wise (``ufunc.reduceat``): a
    model of many small layers costs one copy and a few numpy calls, not a few per tensor."""
    p = len(ts)
    norm, second, mn, mx, nf = [0.0] * p, [0.0] * p, [0.0] * p, [0.0] * p, [0] * p
    small = []
    for i, t in enumerate(ts):
        if 0 < t.numel() <= FLAT:
            small.append(i)
            continue
        a = t.numpy()
        norm[i] = n = float(torch.linalg.vector_norm(t)) if t.numel() else 0.0
        second[i] = count_zeros(a) if grads else _sum(t, a)
        mn[i], mx[i] = _minmax(t, a)
        nf[i] = 0 if math.isfinite(n) else count_nonfinite(a)
    if not small:
        return norm, second, mn, mx, nf
    parts = [ts[i].reshape(-1) for i in small]
    a = torch.cat(parts).numpy() if len(parts) > 1 else parts[0].numpy()
    offs = np.zeros(len(parts), dtype=np.int64)
    np.cumsum([q.numel() for q in parts[:-1]], out=offs[1:])
    norms = np.sqrt(np.add.reduceat(np.square(a, dtype=np.float64), offs)).tolist()
    if grads:
        seconds = np.add.reduceat(a == 0, offs, dtype=np.int64).tolist()
    else:
        seconds = np.add.reduceat(a, offs, dtype=np.float64).tolist()
    lows, highs = np.minimum.reduceat(a, offs).tolist(), np.maximum.reduceat(a, offs).tolist()
    for k, i in enumerate(small):
        norm[i], second[i], mn[i], mx[i] = norms[k], seconds[k], lows[k], highs[k]
        if not math.isfinite(norms[k]):
            nf[i] = count_nonfinite(parts[k].numpy())
    return norm, second, mn, mx, nf


def param_raw(ws: list[torch.Tensor], gs: list[torch.Tensor | None]) -> np.ndarray:
    """Host version of :func:`recorders._stats.param_raw`: float64 ``(len(PARAM_RAW) * P,)``.

    Reduced with numpy (a few calls for all the small tensors together, see :func:`_stats_of`);
    non-finite entries are counted only where a norm says there are some. Call inside
    ``np.errstate(**QUIET)``.
    """
    p = len(ws)
    if p == 0:
        return np.zeros(0)
    nan = math.nan
    w_norm, w_sum, w_min, w_max, w_nf = _stats_of([_stats._fast(w) for w in ws], grads=False)
    g_norm, g_min, g_max = [nan] * p, [nan] * p, [nan] * p
    g_zeros, g_nf, g_present = [0] * p, [0] * p, [0] * p
    present = [i for i, g in enumerate(gs) if g is not None]
    if present:
        gf = [_stats._grad_values(gs[i]) for i in present]  # type: ignore[arg-type]
        norms, zeros, mins, maxs, nfs = _stats_of(gf, grads=True)
        for k, i in enumerate(present):
            g_norm[i], g_min[i], g_max[i], g_nf[i], g_present[i] = norms[k], mins[k], maxs[k], nfs[k], 1
            g_zeros[i] = zeros[k] + (ws[i].numel() - gf[k].numel())
    out = np.array([w_norm, w_sum, w_min, w_max, g_norm, g_min, g_max, w_nf, g_zeros, g_nf, g_present,
                    [nan] * p], dtype=np.float64)
    for lo, hi in ((2, 3), (5, 6)):  # stored as -max|x|, max|x| (the device path's convention)
        out[hi] = np.maximum(np.abs(out[lo]), np.abs(out[hi]))
        out[lo] = -out[hi]
    return out.reshape(-1)


# ----------------------------------------------------------------------------- activations


def act_call_raw(
    x: torch.Tensor, unit_dim: int | None, bounds: tuple[float, float] | None, nonneg: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Host version of :func:`recorders._stats.act_call_raw` (inside ``np.errstate(**QUIET)``)."""
    xf = _stats._fast(x)
    a = xf.numpy()
    n = a.size
    s = _sum(xf, a)
    q = _sumsq(xf, a)
    zeros = count_zeros(a) if n else 0
    alive = None
    units = dead = math.nan
    if unit_dim is not None and a.ndim >= 2 and n:
        width = a.shape[1] if unit_dim == 1 and a.ndim >= 3 else a.shape[-1]
        if zeros == 0:  # no zero anywhere: every unit is alive, and one aminmax is enough
            alive = np.ones(width, dtype=bool)
            mn, mx = (0.0, float(xf.max())) if nonneg else _minmax(xf, a)
        else:
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
    finite = math.isfinite(s) and math.isfinite(q)
    sat = math.nan if bounds is None else _count_saturated(a, bounds, mn, mx, finite)
    nonfinite = 0 if finite else count_nonfinite(a)
    raw = np.array([n, s, q, mn, mx, zeros, sat, nonfinite, units, dead], np.float64)
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


def _count_saturated(a: np.ndarray, bounds: tuple[float, float], mn: float, mx: float, finite: bool) -> int:
    lo, hi = bounds
    eps = 0.01 * (hi - lo)
    if finite and mn > lo + eps and mx < hi - eps:
        return 0
    return int(np.count_nonzero(a <= lo + eps) + np.count_nonzero(a >= hi - eps))


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


def grad_carry(g: torch.Tensor, incoming: torch.Tensor) -> float:
    """Host version of :meth:`recorders._hooks.GradProbe.measure`."""
    gd = as_numpy(g.to_dense() if g.is_sparse else g).astype(np.float64).reshape(-1)
    s = incoming.numpy().reshape(-1)
    gn = float(np.sqrt(np.dot(gd, gd)))
    sn = float(np.sqrt(np.dot(s, s)))
    if sn > 0 and float(np.dot(gd, s)) >= (1 - 1e-6) * gn * sn:
        return 0.0
    d = gd - s
    return float(np.sqrt(np.dot(d, d)) / gn) if gn > 0 else math.nan


# ----------------------------------------------------------------------------- batches


def _padded(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` top-left in a NaN array of ``shape`` (``a`` itself when it fits exactly)."""
    if a.shape == shape:
        return a
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
    a = as_numpy(as_rows(t) if rows_first else as_2d(t))
    return a if a.dtype.kind == "f" else a.astype(np.float64)


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
    shifted = np.exp(o2 - o2.max(axis=1, keepdims=True))
    maxprob = float(np.mean(1.0 / shifted.sum(axis=1, dtype=np.float64)))
    tail = np.array([rs_mean, rs_std, mn, mx, in01, maxprob, count_nonfinite(o2)], np.float64)
    return [_padded(o2[:rows, :c], (rows, c)), _padded(mean, (c,)), _padded(std, (c,)), hist, tail]


def targets(t: torch.Tensor, rows: int, c: int, kind: str, k: int) -> list[np.ndarray]:
    """Host version of ``BatchSummaries._targets``."""
    raw = as_numpy(as_2d(t))
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


# ----------------------------------------------------------------------------- activation groups


def act_group_raw(
    block: torch.Tensor, unit_dim: int, bounds: list, nonneg: list[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`act_call_raw` of ``k`` outputs of one shape at once: ``block`` ``(k, *shape)``
    (float32/64, at least 2-D outputs) gives raw rows ``(k, len(MODULE_RAW))`` and unit-alive
    masks ``(k, units)``, in a few numpy calls for all ``k`` (inside ``np.errstate(**QUIET)``)."""
    k = block.shape[0]
    a = block.numpy()
    flat = a.reshape(k, -1)
    n = flat.shape[1]
    s = flat.sum(axis=1, dtype=np.float64)
    q = torch.linalg.vector_norm(block.reshape(k, -1), dim=1).numpy().astype(np.float64) ** 2
    zeros = np.count_nonzero(flat == 0, axis=1)
    if unit_dim == 1 and a.ndim >= 4:  # (k, B, C, ...): channels
        v = a.reshape(k, a.shape[1], a.shape[2], -1)
        umax, umin = v.max(axis=(1, 3)), v.min(axis=(1, 3))
    else:
        v = a.reshape(k, -1, a.shape[-1])
        umax, umin = v.max(axis=1), v.min(axis=1)
    alive = (umax != 0) | (umin != 0)
    units = alive.shape[1]
    raw = np.empty((k, len(_stats.MODULE_RAW)))
    raw[:, 0] = n
    raw[:, 1] = s
    raw[:, 2] = q
    raw[:, 3] = np.where(nonneg, 0.0, umin.min(axis=1))
    raw[:, 4] = umax.max(axis=1)
    raw[:, 5] = zeros
    raw[:, 6] = math.nan
    finite = np.isfinite(s) & np.isfinite(q)
    raw[:, 7] = 0
    raw[:, 8] = units
    raw[:, 9] = units - np.count_nonzero(alive, axis=1)
    for r in range(k):
        if bounds[r] is not None:
            raw[r, 6] = _count_saturated(flat[r], bounds[r], raw[r, 3], raw[r, 4], bool(finite[r]))
        if not finite[r]:
            raw[r, 7] = count_nonfinite(flat[r])
    return raw, alive
