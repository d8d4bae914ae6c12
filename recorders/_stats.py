"""Per-step statistics: a few batched reductions on the tensors' device, derived on the host.

The main thread only runs reductions (norms, sums, min/max, counts) and stacks their
results into one row; turning those raw sums into means, stds and fractions is numpy work
done by the writer thread (:func:`derive_params`, :func:`derive_modules`). Every function
here reads its inputs and never writes to them, never draws random numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from recorders import schema

NAN = float("nan")
FAST_DTYPES = (torch.float32, torch.float64)

# Raw per-parameter fields, stored field-major in the row: (len(PARAM_RAW), P).
PARAM_RAW = (
    "w_norm", "w_sum", "w_min", "w_max",
    "g_norm", "g_min", "g_max",
    "w_nonfinite", "g_zeros", "g_nonfinite", "g_present",
    "update_ratio",
)  # fmt: skip
PR = {name: i for i, name in enumerate(PARAM_RAW)}

# Raw per-module activation fields, stored module-major: (M, len(MODULE_RAW)).
MODULE_RAW = ("n", "sum", "sumsq", "min", "max", "zeros", "sat", "nonfinite", "units", "dead")
MR = {name: i for i, name in enumerate(MODULE_RAW)}


def _fast(t: torch.Tensor) -> torch.Tensor:
    """``t`` detached, in a dtype whose reductions are exact enough (float32 or wider)."""
    if t.requires_grad:
        t = t.detach()
    return t if t.dtype in FAST_DTYPES else t.float()


def count_zeros(t: torch.Tensor) -> torch.Tensor:
    """Entries exactly 0 (-0.0 included), as a 0-d int64 tensor."""
    return (t == 0).sum()


def count_nonfinite(t: torch.Tensor) -> torch.Tensor:
    """Entries that are NaN or +-Inf, as a 0-d int64 tensor."""
    return t.numel() - torch.isfinite(t).sum()


# ----------------------------------------------------------------------------- parameters


def param_raw(ws: list[torch.Tensor], gs: list[torch.Tensor | None]) -> torch.Tensor:
    """Raw statistics of weights ``ws`` and grads ``gs``: float64 ``(len(PARAM_RAW) * P,)``.

    Runs on the tensors' device without a host synchronisation, fused over all tensors:
    ``torch._foreach_norm`` for the norms (ord 2), the largest magnitudes (ord inf, stored
    as ``-max|x|, max|x|`` in the min/max slots) and the gradients' non-zeros (ord 0); one
    sum and one finite count per tensor. (CPU models use ``_host.param_raw`` instead.)
    """
    wf = [_fast(w) for w in ws]
    dev = wf[0].device if wf else torch.device("cpu")
    p = len(ws)
    if p == 0:
        return torch.zeros(0, dtype=torch.float64, device=dev)
    nan = dev_scalar(NAN, dev, torch.float32)
    w_norm = torch.stack(torch._foreach_norm(wf)).to(torch.float64)
    w_max = torch.stack(_maxabs(wf, nan)).to(torch.float64)
    w_sum = torch.stack([w.sum() for w in wf]).to(torch.float64)
    w_nf = torch.stack([count_nonfinite(w) for w in wf]).to(torch.float64)
    g_norm, g_max = [nan] * p, [nan] * p
    zero = dev_scalar(0, dev, torch.int64)
    g_zeros, g_nf, present = [zero] * p, [zero] * p, [zero] * p
    idx = [i for i, g in enumerate(gs) if g is not None]
    gf = [_grad_values(gs[i]) for i in idx]  # type: ignore[arg-type]
    one = dev_scalar(1, dev, torch.int64)
    if gf:
        norms = torch._foreach_norm(gf)
        maxes = _maxabs(gf, nan)
        nonzero = torch._foreach_norm(gf, 0)
        for i, g, n, mx, nz in zip(idx, gf, norms, maxes, nonzero):
            g_norm[i], g_max[i] = n, mx
            g_zeros[i] = gs[i].numel() - nz.to(torch.int64)  # type: ignore[union-attr]
            g_nf[i] = count_nonfinite(g)
            present[i] = one
    g_norm_t = torch.stack(g_norm).to(torch.float64)
    g_max_t = torch.stack(g_max).to(torch.float64)
    counts = torch.stack(g_zeros + g_nf + present).to(torch.float64)
    upd = torch.full((p,), NAN, dtype=torch.float64, device=dev)
    return torch.cat([w_norm, w_sum, -w_max, w_max, g_norm_t, -g_max_t, g_max_t, w_nf, counts, upd])


def _maxabs(ts: list[torch.Tensor], nan: torch.Tensor) -> list[torch.Tensor]:
    """max |t| of each tensor as 0-d tensors, fused (``nan`` for an empty one)."""
    full = [i for i, t in enumerate(ts) if t.numel()]
    out = [nan] * len(ts)
    if full:
        for i, v in zip(full, torch._foreach_norm([ts[i] for i in full], math.inf)):
            out[i] = v
    return out


def _grad_values(g: torch.Tensor) -> torch.Tensor:
    """Dense view of a gradient; a sparse one is reduced to its stored values."""
    if g.is_sparse:
        return _fast(g.coalesce().values())
    return _fast(g)


def dev_scalar(value: float, dev: torch.device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A 0-d tensor made on ``dev`` by a fill kernel (``torch.tensor(x, device=...)`` would
    copy from host memory and synchronise)."""
    return torch.full((), value, dtype=dtype, device=dev)


def derive_params(raw: np.ndarray, numel: np.ndarray) -> dict[str, np.ndarray]:
    """The ``params/`` statistics from raw rows ``(n, len(PARAM_RAW), P)``: name -> (n, P)."""
    r = {name: raw[:, i, :] for i, name in enumerate(PARAM_RAW)}
    n = np.maximum(numel.astype(np.float64), 1.0)
    present = r["g_present"] > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = r["w_sum"] / n
        var = r["w_norm"] ** 2 / n - mean**2
        out = {
            "w_norm": r["w_norm"],
            "w_mean": mean,
            "w_std": np.sqrt(np.maximum(var, 0.0)),
            "w_maxabs": np.maximum(np.abs(r["w_min"]), np.abs(r["w_max"])),
            "w_nonfinite": r["w_nonfinite"],
            "g_norm": np.where(present, r["g_norm"], np.nan),
            "g_maxabs": np.where(present, np.maximum(np.abs(r["g_min"]), np.abs(r["g_max"])), np.nan),
            "g_zero_frac": np.where(present, r["g_zeros"] / n, np.nan),
            "g_nonfinite": np.where(present, r["g_nonfinite"], 0.0),
            "update_ratio": r["update_ratio"],
        }
    assert tuple(out) == schema.PARAM_STATS
    return {k: v.astype(np.float32) for k, v in out.items()}


# ----------------------------------------------------------------------------- activations


def act_call_raw(
    x: torch.Tensor, unit_dim: int | None, bounds: tuple[float, float] | None, nonneg: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Raw sums of one forward output: float64 ``(len(MODULE_RAW),)`` and the unit-alive mask.

    ``unit_dim`` 1 (channels of a feature map) or -1 (last dim) or None (no units).
    ``nonneg`` says the module cannot output negatives (ReLU...), which saves the ``amin``.
    """
    xf = _fast(x)
    dev = xf.device
    n = xf.numel()
    s = xf.sum()
    q = torch.linalg.vector_norm(xf)
    alive = None
    if unit_dim is not None and xf.dim() >= 2 and n:
        if unit_dim == 1 and xf.dim() >= 3:
            v = xf.reshape(xf.shape[0], xf.shape[1], -1)
            umax = v.amax(dim=2).amax(dim=0)
            umin = None if nonneg else v.amin(dim=2).amin(dim=0)
        else:
            v = xf.reshape(-1, xf.shape[-1])
            umax = v.amax(dim=0)
            umin = None if nonneg else v.amin(dim=0)
        alive = umax != 0 if umin is None else (umax != 0) | (umin != 0)
        mx = umax.max()
        mn = mx.new_zeros(()) if umin is None else umin.min()
        units, dead = dev_scalar(alive.numel(), dev), alive.numel() - alive.sum()
    elif n:
        mn, mx = torch.aminmax(xf)
        units = dead = dev_scalar(NAN, dev)
    else:
        mn = mx = units = dead = dev_scalar(NAN, dev)
    sat = dev_scalar(NAN, dev) if bounds is None else _count_saturated(xf, bounds)
    nf = count_nonfinite(xf)
    parts = [dev_scalar(n, dev), s, q * q, mn, mx, count_zeros(xf), sat, nf, units, dead]
    return torch.stack([p.to(torch.float64) for p in parts]), alive


def _count_saturated(xf: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Elements within 1 % of the range width of either bound."""
    lo, hi = bounds
    eps = 0.01 * (hi - lo)
    return (xf <= lo + eps).sum() + (xf >= hi - eps).sum()


def combine_calls(raws: list[torch.Tensor], alive: torch.Tensor | None) -> torch.Tensor:
    """Merge raw rows of several forward calls of one module in one step.

    ``alive`` is the OR of the calls' unit masks (None when their unit counts differed).
    """
    if len(raws) == 1:
        return raws[0]
    st = torch.stack(raws)
    total = st.sum(0)
    total[MR["min"]] = st[:, MR["min"]].min()
    total[MR["max"]] = st[:, MR["max"]].max()
    if alive is None:
        total[MR["units"]] = NAN
        total[MR["dead"]] = NAN
    else:
        total[MR["units"]] = alive.numel()
        total[MR["dead"]] = alive.numel() - alive.sum()
    return total


def derive_modules(raw: np.ndarray, bounded: np.ndarray) -> dict[str, np.ndarray]:
    """The ``modules/`` statistics from raw rows ``(n, M, len(MODULE_RAW))``: name -> (n, M)."""
    r = {name: raw[:, :, i] for i, name in enumerate(MODULE_RAW)}
    n = r["n"]
    ran = n > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = r["sum"] / n
        var = r["sumsq"] / n - mean**2
        std = np.sqrt(np.maximum(var, 0.0))
        out = {
            "a_mean": mean,
            "a_std": std,
            "a_maxabs": np.maximum(np.abs(r["min"]), np.abs(r["max"])),
            "a_zero_frac": r["zeros"] / n,
            "a_sat_frac": np.where(bounded, r["sat"] / n, np.nan),
            "a_dead_frac": r["dead"] / r["units"],
            "a_nonfinite": r["nonfinite"],
        }
    assert tuple(out) == schema.MODULE_STATS
    return {k: np.where(ran, v, np.nan).astype(np.float32) for k, v in out.items()}


# ----------------------------------------------------------------------------- histograms


def histogram(
    t: torch.Tensor, all_finite: bool = False, bins: int = schema.HIST_BINS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts over ``bins`` equal bins spanning [min, max] of the finite values, and that range.

    Non-finite values are not counted (``all_finite`` skips looking for them). A constant
    tensor puts every count in bin 0. Returns int32 ``(bins,)`` and float32 ``(2,)``.
    """
    tf = _fast(t).reshape(-1)
    if not all_finite:
        fin = torch.isfinite(tf)
        if not bool(fin.all()):
            tf = tf[fin]
    dev = tf.device
    if tf.numel() == 0:
        return (
            torch.zeros(bins, dtype=torch.int32, device=dev),
            torch.full((2,), NAN, dtype=torch.float32, device=dev),
        )
    lo, hi = torch.aminmax(tf)
    lo_f, hi_f = float(lo), float(hi)
    rng = torch.tensor([lo_f, hi_f], dtype=torch.float32)
    if hi_f > lo_f:
        src = tf if dev.type == "cpu" or not torch.are_deterministic_algorithms_enabled() else tf.cpu()
        counts = torch.histc(src, bins=bins, min=lo_f, max=hi_f).to(torch.int32)
    else:
        counts = torch.zeros(bins, dtype=torch.int32)
        counts[0] = tf.numel()
    return counts, rng


# ----------------------------------------------------------------------------- snapshots


def snapshot_strides(shape: tuple[int, ...], max_elems: int) -> list[int]:
    """Strides that bring a tensor of ``shape`` to at most ``max_elems`` elements.

    Small tensors keep every element (stride 1 per dim). Larger ones: 1-D keeps every
    ``s``-th element; n-D is viewed as ``(shape[0], prod(rest))`` and keeps every ``s0``-th
    row and ``s1``-th column.
    """
    numel = math.prod(shape)
    if numel <= max_elems:
        return [1] * len(shape)
    if len(shape) == 1:
        return [math.ceil(numel / max_elems)]
    a, b = shape[0], numel // shape[0]
    s = max(1, math.isqrt(numel // max_elems))
    while math.ceil(a / s) * math.ceil(b / s) > max_elems:
        s += 1
    s0 = s
    s1 = s
    # Give back resolution on the dimension that is not at its limit.
    while s1 > 1 and math.ceil(a / s0) * math.ceil(b / (s1 - 1)) <= max_elems:
        s1 -= 1
    while s0 > 1 and math.ceil(a / (s0 - 1)) * math.ceil(b / s1) <= max_elems:
        s0 -= 1
    return [s0, s1]


def reduced_shape(shape: tuple[int, ...], strides: list[int]) -> tuple[int, ...]:
    """Shape of a tensor of ``shape`` after :func:`reduce_tensor` with ``strides``."""
    if all(s == 1 for s in strides):
        return tuple(shape)
    if len(shape) == 1:
        return (math.ceil(shape[0] / strides[0]),)
    a, b = shape[0], math.prod(shape[1:])
    return (math.ceil(a / strides[0]), math.ceil(b / strides[1]))


def reduce_tensor(t: torch.Tensor, strides: list[int]) -> torch.Tensor:
    """A float32 copy of ``t`` sliced by ``strides`` (see :func:`snapshot_strides`)."""
    t = t.detach()
    if t.is_sparse:
        t = t.to_dense()
    if all(s == 1 for s in strides):
        v = t
    elif t.dim() == 1:
        v = t[:: strides[0]]
    else:
        v = t.reshape(t.shape[0], -1)[:: strides[0], :: strides[1]]
    return v.to(torch.float32, copy=True)
