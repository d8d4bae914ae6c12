"""Per-rank series of a multi-process run, for the app's rank × step lanes. Numpy only.

Replicas of a data-parallel run see different batches, so their losses differ a little
and their (all-reduced) gradient norms not at all; a rank that drifts or blows up shows
as a row that departs from the others. ``relative_to_median`` is that departure:
``log10(value / median over ranks)`` per step, 0 where a rank agrees with the rest.
"""

from __future__ import annotations

import warnings

import numpy as np

from analysis.trace import Trace

WHAT = ("loss", "grad norm")


def _global_norm(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    nan = np.isnan(g)
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.where(nan, 0.0, g * g)
    out = np.sqrt(sq.sum(axis=1))
    out[nan.all(axis=1)] = np.nan
    return out


def _values(t: Trace, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, measured)`` of one rank's rows."""
    if what == "loss":
        loss = np.asarray(t.loss(), dtype=np.float64)
        return loss, np.ones(len(loss), bool)
    if what == "grad norm" and t.has("params/g_norm"):
        norm = _global_norm(t.param_stat("g_norm"))
        return norm, np.asarray(t.measured("params"), bool)[: len(norm)]
    return None


def rank_matrix(trace: Trace, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(steps (N,), values (R, N), missing (R, N))`` on rank 0's steps; None if the trace lacks it.

    ``missing`` marks cells with no value: the rank has no row at that step, or the row did
    not measure the statistic (``steps/measured``); those values are NaN but not evidence.
    """
    if what not in WHAT:
        raise ValueError(f"unknown rank series {what!r}; one of {WHAT}")
    base = trace.rank(0)
    steps = np.asarray(base.steps, dtype=np.int64)
    rows, missing = [], []
    for r in range(trace.n_ranks):
        t = base if r == 0 else trace.rank(r)
        got = _values(t, what)
        if got is None:
            return None
        v, measured = got
        own = np.asarray(t.steps, dtype=np.int64)[: len(v)]
        out = np.full(len(steps), np.nan)
        have = np.zeros(len(steps), bool)
        if len(own):
            idx = np.clip(np.searchsorted(own, steps), 0, len(own) - 1)
            hit = own[idx] == steps
            out[hit] = v[idx[hit]]
            have[hit] = measured[idx[hit]]
        out[~have] = np.nan
        rows.append(out)
        missing.append(~have)
    return steps, np.vstack(rows), np.vstack(missing)


def relative_to_median(values: np.ndarray) -> np.ndarray:
    """``log10(values / median over ranks)`` per step (R, N); NaN where not positive or missing."""
    v = np.asarray(values, dtype=np.float64)
    pos = np.where(np.isfinite(v) & (v > 0), v, np.nan)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a step no rank recorded: NaN, as it should
        med = np.nanmedian(pos, axis=0)
        return np.log10(pos / med)
