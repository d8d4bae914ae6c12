"""constant_inputs — the inputs carry no variation: nothing to learn from.

Looks at: ``inputs/std`` and ``inputs/mean`` per step (over every element of the batch),
    ``inputs/feat_std`` / ``feat_mean`` (per kept feature, across the batch), the first
    batch's shape, and whether the sampled inputs change from step to step.
Fires when: on ≥ 95 % of recorded steps either every element of the batch is the same number
    (std 0), or — with batches of more than one row — every row of the batch is the same
    (all feature stds 0). Error; the evidence says whether the input also never changes
    across steps.
Evidence: the share of steps, the constant value or the per-feature spread, the steps.
Onset: 0, or the step from which the inputs stay constant.
Fix: check what reaches ``model(x)``: a tensor created with zeros/ones/full instead of the
    batch, ``x = x * 0`` or a mask that zeroes everything, an index that selects one row, or
    a normalisation dividing by a huge number.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace

CODE = "constant_inputs"
FIX = ("check what reaches model(x): a tensor built with zeros/ones/full instead of the batch, an x * 0 or a "
       "mask that zeroes everything, indexing that repeats one sample, or a normalisation dividing by a huge "
       "number; print x.std(0) for one batch")


@detector(code=CODE, kind="cause", requires=("inputs",))
def detect(trace: Trace) -> Finding | None:
    std, mean = D.column(trace, "inputs", "std"), D.column(trace, "inputs", "mean")
    valid = np.isfinite(std) & np.isfinite(mean)
    if valid.sum() < 1:
        return None
    tol = 1e-6 * np.maximum(np.abs(mean), 1.0)
    flat = valid & (std <= tol)
    rows = D.thin(trace)
    same_rows = np.zeros(trace.n_steps, bool)
    batch = (D.shape(trace, "inputs") or (0,))[0]
    spread = np.nan
    if batch > 1 and D.has(trace, "inputs", "feat_std"):
        fs = np.asarray(D.read(trace, "inputs", "feat_std", rows), np.float64)
        fm = np.asarray(D.read(trace, "inputs", "feat_mean", rows), np.float64)
        scale = np.maximum(M.nanmax(np.abs(fm), axis=1), 1.0)
        row_max = M.nanmax(fs, axis=1)
        same_rows[np.arange(trace.n_steps)[rows]] = np.isfinite(row_max) & (row_max <= 1e-6 * scale)
        spread = M.nanmax(fs)
    thin_idx = np.arange(trace.n_steps)[rows]
    hit = (flat | same_rows)[thin_idx]
    considered = valid[thin_idx]
    start = mask_onset(hit, considered, min_frac=0.95)  # inputs may stop varying mid-run
    if start < 0 or considered[start:].sum() < max(3, 0.1 * considered.sum()):
        return None
    if from_start(int(thin_idx[start]), trace.n_steps):
        start = 0
    share = M.frac(hit[start:][considered[start:]])
    span = [int(trace.steps[thin_idx[start]]) if start else int(trace.steps[0]), int(trace.steps[-1])]
    n = int(considered[start:].sum())
    if M.frac(flat[thin_idx][considered]) >= 0.95:
        values = np.unique(np.round(mean[valid], 6))
        what = (f"every element of every batch equals {M.fmt(float(values[0]))}" if len(values) == 1 else
                f"every element within a batch is the same number (std 0; {len(values)} different values "
                "across steps)")
    else:
        what = (f"every row of each batch is the same (largest per-feature std across the batch "
                f"{M.fmt(float(spread))}, batch size {batch})")
    moving = _changes_across_steps(trace, rows)
    evidence = (f"{what} on {share:.0%} of {n} checked steps ({span[0]}–{span[1]})"
                f"{'' if moving else '; the input is also identical from step to step'}: "
                "the model cannot tell examples apart")
    conf = 0.97 if n >= 5 else 0.7
    return Finding(code=CODE, kind="cause", severity="error" if n >= 3 else "warning", confidence=conf,
                   steps=span, layer=None, title="Inputs do not vary", evidence=evidence, fix=FIX)


def _changes_across_steps(trace: Trace, rows: slice) -> bool:
    if not D.has(trace, "inputs", "sample"):
        return True
    s = D.flat_rows(D.read(trace, "inputs", "sample", rows))
    if len(s) < 2:
        return True
    return bool((s.max(axis=0) - s.min(axis=0) > 1e-6 * np.maximum(np.abs(s).max(axis=0), 1.0)).any())
