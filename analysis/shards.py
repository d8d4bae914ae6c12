"""Merging the per-rank statistics of sharded parameters (FSDP) into whole-parameter values.

Each rank records its own shard (``params/local_numel`` elements); the whole parameter's
statistic follows from the shards' sums, sums of squares, extremes and counts:
``‖w‖ = √Σ‖w_r‖²``, ``mean = Σ n_r·mean_r / Σ n_r``, ``std`` from the merged Σw and Σw²,
``maxabs = max_r``, counts and zero fractions summed over elements, and
``update_ratio = √Σ (ratio_r·‖w_r‖)² / √Σ ‖w_r‖²``. Pure numpy; ``analysis.trace`` calls it.
"""

from __future__ import annotations

import numpy as np

# The recorded statistics each merged one is computed from.
NEEDS: dict[str, tuple[str, ...]] = {
    "w_norm": ("w_norm",),
    "w_mean": ("w_mean",),
    "w_std": ("w_norm", "w_mean"),
    "w_maxabs": ("w_maxabs",),
    "w_nonfinite": ("w_nonfinite",),
    "g_norm": ("g_norm",),
    "g_maxabs": ("g_maxabs",),
    "g_zero_frac": ("g_zero_frac",),
    "g_nonfinite": ("g_nonfinite",),
    "update_ratio": ("update_ratio", "w_norm"),
}


def _norm(norms: np.ndarray, held: np.ndarray) -> np.ndarray:
    """√Σ‖·‖² over ranks holding elements; NaN where no holding rank measured it."""
    sq = np.where(held, norms.astype(np.float64) ** 2, 0.0)
    seen = (held & ~np.isnan(norms)).any(axis=0)
    return np.where(seen, np.sqrt(np.nansum(sq, axis=0)), np.nan)


def _mean(means: np.ndarray, n: np.ndarray) -> np.ndarray:
    total = np.maximum(n.sum(axis=0), 1)
    return np.sum(np.where(n > 0, means.astype(np.float64) * n, 0.0), axis=0) / total


def _extreme(values: np.ndarray, held: np.ndarray) -> np.ndarray:
    """The largest over ranks holding elements; NaN when one of them is NaN (a NaN tensor)."""
    v = np.where(held, values.astype(np.float64), -np.inf)
    out = np.max(v, axis=0)
    bad = (held & np.isnan(values)).any(axis=0) | ~held.any(axis=0)
    return np.where(bad, np.nan, out)


def merge(stat: str, raw: dict[str, np.ndarray], local_numel: np.ndarray) -> np.ndarray:
    """The merged ``(N, P)`` statistic from each rank's ``raw[name]`` ``(R, N, P)``.

    ``local_numel`` ``(R, P)`` is what each rank holds of each parameter.
    """
    n = local_numel.astype(np.float64)[:, None, :]  # (R, 1, P)
    held = np.broadcast_to(n > 0, raw[NEEDS[stat][0]].shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if stat in ("w_norm", "g_norm"):
            return _norm(raw[stat], held)
        if stat == "w_mean":
            return _mean(raw["w_mean"], n)
        if stat == "w_std":
            total = np.maximum(n.sum(axis=0), 1)
            mean = _mean(raw["w_mean"], n)
            sumsq = np.sum(np.where(held, raw["w_norm"].astype(np.float64) ** 2, 0.0), axis=0)
            return np.sqrt(np.maximum(sumsq / total - mean**2, 0.0))
        if stat in ("w_maxabs", "g_maxabs"):
            return _extreme(raw[stat], held)
        if stat in ("w_nonfinite", "g_nonfinite"):
            return np.nansum(np.where(held, raw[stat], 0.0), axis=0)
        if stat == "g_zero_frac":
            frac = raw[stat].astype(np.float64)
            seen = (held & ~np.isnan(frac)).any(axis=0)
            zeros = np.nansum(np.where(held, frac * n, 0.0), axis=0)
            return np.where(seen, zeros / np.maximum(n.sum(axis=0), 1), np.nan)
        if stat == "update_ratio":
            w = raw["w_norm"].astype(np.float64)
            moved = _norm(raw["update_ratio"] * w, held)
            return moved / _norm(w, held)
    raise KeyError(f"no merge rule for parameter statistic {stat!r}")
