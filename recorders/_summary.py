"""The multi-resolution summary: min / max / mean of per-step series over blocks of steps.

Kept by the writer thread as rows arrive and appended block by block (the last, partial
block at close), so an overview of a million steps reads a few hundred blocks instead of
a million rows. Non-finite values and unmeasured rows (NaN) are left out of a block's
statistics; a block with no finite value holds NaN. Torch-free.
"""

from __future__ import annotations

import numpy as np

from recorders import schema
from recorders._layout import Growable, Layout

QUIET = {"all": "ignore"}


def series(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The summarised series of ``n`` derived rows: name -> (n,) or (n, P|M)."""
    p = schema.PARAMS
    g = data[f"{p}/g_norm"].astype(np.float64)
    w = data[f"{p}/w_norm"].astype(np.float64)
    upd = data[f"{p}/update_ratio"].astype(np.float64)
    lr = data[schema.LR]
    with np.errstate(**QUIET):
        out = {
            "loss": data[schema.LOSS].astype(np.float64),
            "grad_carry": data[schema.GRAD_CARRY].astype(np.float64),
            "lr0": lr[:, 0] if lr.shape[1] else np.full(len(g), np.nan),
            "g_norm_total": _total(g),
            "w_norm_total": _total(w),
            "update_ratio_max": _nanmax(np.where(np.isfinite(upd), upd, np.nan)),
        }
    for stat in schema.SUMMARY_PARAM_STATS:
        out[f"{p}/{stat}"] = data[f"{p}/{stat}"]
    for stat in schema.SUMMARY_MODULE_STATS:
        out[f"{schema.MODULES}/{stat}"] = data[f"{schema.MODULES}/{stat}"]
    return out


def _total(a: np.ndarray) -> np.ndarray:
    """Root of the sum of squares per row; NaN for a row with no finite entry."""
    ok = np.isfinite(a)
    tot = np.sqrt(np.where(ok, a * a, 0.0).sum(axis=1)) if a.ndim == 2 else a
    return np.where(ok.any(axis=1), tot, np.nan) if a.ndim == 2 else tot


def _nanmax(a: np.ndarray) -> np.ndarray:
    if a.shape[1] == 0:
        return np.full(a.shape[0], np.nan)
    ok = np.isfinite(a)
    return np.where(ok.any(axis=1), np.where(ok, a, -np.inf).max(axis=1), np.nan)


def growables(lay: Layout, block: int) -> list[Growable]:
    """The summary datasets, created with the layout."""
    out = []
    tails = {name: () for name in schema.SUMMARY_SCALARS}
    tails.update({f"{schema.PARAMS}/{s}": (lay.n_params,) for s in schema.SUMMARY_PARAM_STATS})
    tails.update({f"{schema.MODULES}/{s}": (lay.n_modules,) for s in schema.SUMMARY_MODULE_STATS})
    for factor in schema.SUMMARY_LEVELS:
        grp = schema.summary_level(block * factor)
        out += [Growable(f"{grp}/step", "int64"), Growable(f"{grp}/rows", "int32")]
        out += [Growable(f"{grp}/{name}", "float32", (*tail, 3)) for name, tail in tails.items()]
    return out


class _Level:
    def __init__(self, size: int) -> None:
        self.size = size
        self.block = -1
        self.rows = 0
        self.acc: dict[str, list[np.ndarray]] = {}  # name -> [min, max, sum, count]

    def add(self, steps: np.ndarray, ser: dict[str, np.ndarray], emit) -> None:
        ids = steps // self.size
        start = 0
        for k in range(1, len(ids) + 1):
            if k == len(ids) or ids[k] != ids[start]:
                if ids[start] != self.block:
                    self.flush(emit)
                    self.block = int(ids[start])
                self._accumulate({n: v[start:k] for n, v in ser.items()}, k - start)
                start = k

    def _accumulate(self, ser: dict[str, np.ndarray], n: int) -> None:
        self.rows += n
        with np.errstate(**QUIET):
            for name, v in ser.items():
                v = v.astype(np.float64)
                ok = np.isfinite(v)
                lo = np.where(ok, v, np.inf).min(axis=0)
                hi = np.where(ok, v, -np.inf).max(axis=0)
                total = np.where(ok, v, 0.0).sum(axis=0)
                count = ok.sum(axis=0)
                acc = self.acc.get(name)
                if acc is None:
                    self.acc[name] = [lo, hi, total, count]
                else:
                    acc[0] = np.minimum(acc[0], lo)
                    acc[1] = np.maximum(acc[1], hi)
                    acc[2] = acc[2] + total
                    acc[3] = acc[3] + count

    def flush(self, emit) -> None:
        if self.block < 0 or not self.rows:
            return
        out = {"step": np.array([self.block * self.size], np.int64), "rows": np.array([self.rows], np.int32)}
        with np.errstate(**QUIET):
            for name, (lo, hi, total, count) in self.acc.items():
                some = count > 0
                stats = np.stack([np.where(some, lo, np.nan), np.where(some, hi, np.nan),
                                  np.where(some, total / np.maximum(count, 1), np.nan)], axis=-1)
                out[name] = stats[None].astype(np.float32)
        emit(schema.summary_level(self.size), out)
        self.acc = {}
        self.rows = 0


class Summary:
    """Every level of the summary; ``emit(group, {name: (1, ...) array})`` appends a block."""

    def __init__(self, block: int, emit) -> None:
        self.levels = [_Level(block * f) for f in schema.SUMMARY_LEVELS]
        self.emit = emit

    def add(self, data: dict[str, np.ndarray]) -> None:
        ser = series(data)
        steps = data[schema.STEP]
        for level in self.levels:
            level.add(steps, ser, self.emit)

    def close(self) -> None:
        for level in self.levels:
            level.flush(self.emit)
