"""constant_targets — every target is the same value: a broken label pipeline.

Looks at: ``targets/min`` and ``targets/max`` per step (one-column targets), the sampled
    target rows (multi-column targets, e.g. one-hot), and the first batch's shape.
Fires when: the smallest and largest target over the whole run are equal (one-column), or
    every sampled target row is the same vector (multi-column): error when at least 32
    target values were seen, warning below. When targets vary across steps but never
    within a batch (batch size > 1), info: every batch holds one label (sorted, unshuffled
    data, or alternating real/fake batches of a GAN).
Evidence: the constant value (or vector), how many values and steps were seen.
Onset: 0, or the step from which every target stays one value (a label pipeline that breaks mid-run).
Fix: inspect the label pipeline before the model: print a few batches of ``y``; check the
    column/key the labels come from, any ``zeros_like``/``fill_`` on them, and that the
    loader shuffles.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace

CODE = "constant_targets"
FIX = ("inspect the label pipeline before the model: print a few batches of the targets and check the "
       "column or key the labels are read from, any zeros_like / fill_ / default value applied to them, and "
       "the dataset's label counts")


@detector(code=CODE, kind="cause", requires=("targets",))
def detect(trace: Trace) -> Finding | None:
    if D.columns(trace, "targets") > 1 and D.has(trace, "targets", "sample"):
        return _multi_column(trace)
    lo, hi = D.column(trace, "targets", "min"), D.column(trace, "targets", "max")
    valid = np.isfinite(lo) & np.isfinite(hi)
    if not valid.any():
        return None
    gmin, gmax = float(lo[valid].min()), float(hi[valid].max())
    rows = D.folded_rows(trace, "targets") or 1
    seen = int(valid.sum()) * rows
    span = D.step_span(trace)
    scale = max(abs(gmin), abs(gmax), 1.0)
    if gmax - gmin <= 1e-7 * scale:
        sev, conf = ("error", 0.97) if seen >= 32 else ("warning", 0.6)
        value = M.fmt(gmin)
        what = "class index" if D.target_kind(trace) == "index" else "value"
        evidence = (f"every target in {int(valid.sum())} recorded steps (about {seen} values, steps "
                    f"{span[0]}–{span[1]}) is the same {what}, {value}; the model can only learn to "
                    "output it")
        return Finding(code=CODE, kind="cause", severity=sev, confidence=conf, steps=span, layer=None,
                       title=f"All targets are {value}", evidence=evidence, fix=FIX)
    return _late_constant(trace, lo, hi, valid, rows) or _within_batch(trace, lo, hi, valid, rows, span)


def _late_constant(trace: Trace, lo: np.ndarray, hi: np.ndarray, valid: np.ndarray, rows: int
                   ) -> Finding | None:
    """Targets that become one constant value part-way through the run (a label pipeline that broke)."""
    last = np.flatnonzero(valid)
    if len(last) < 20:
        return None
    value = float(lo[last[-1]])
    tol = 1e-7 * max(abs(value), 1.0)
    same = valid & (np.abs(hi - lo) <= tol) & (np.abs(lo - value) <= tol)
    start = mask_onset(same, valid, min_frac=0.99)
    if start <= 0 or valid[start:].sum() < max(10, 0.1 * valid.sum()) or from_start(start, trace.n_steps):
        return None
    span = [int(trace.steps[start]), int(trace.steps[-1])]
    n = int(valid[start:].sum())
    evidence = (f"from step {span[0]} on, every target of {n} recorded steps (about {n * rows} values) is "
                f"{M.fmt(value)}; before that the targets varied: the label pipeline broke at that step")
    return Finding(code=CODE, kind="cause", severity="error", confidence=0.9, steps=span, layer=None,
                   title=f"All targets are {M.fmt(value)} from step {span[0]}", evidence=evidence, fix=FIX,
                   marks={"events": [span[0]]})


def _within_batch(trace: Trace, lo: np.ndarray, hi: np.ndarray, valid: np.ndarray, rows: int,
                  span: list[int]) -> Finding | None:
    if rows <= 1 or valid.sum() < 10:
        return None
    flat = np.abs(hi[valid] - lo[valid]) <= 1e-7 * np.maximum(np.abs(hi[valid]), 1.0)
    if M.frac(flat) < 0.99:
        return None
    values = np.unique(lo[valid])
    evidence = (f"the targets take {len(values)} different values over the run, but within each of "
                f"{int(valid.sum())} recorded batches of {rows} rows all targets are equal "
                f"({M.frac(flat):.0%} of steps): every batch holds a single label")
    fix = ("shuffle the training data (DataLoader(shuffle=True)) and check that labels are not broadcast "
           "per batch; each batch should mix the labels")
    return Finding(code=CODE, kind="cause", severity="info", confidence=0.4, steps=span, layer=None,
                   title="Every batch holds a single target value", evidence=evidence, fix=fix)


def _multi_column(trace: Trace) -> Finding | None:
    rows = D.thin(trace)
    sample = D.flat_rows(D.read(trace, "targets", "sample", rows))
    if len(sample) < 2:
        return None
    spread = sample.max(axis=0) - sample.min(axis=0)
    scale = np.maximum(np.abs(sample).max(axis=0), 1.0)
    if not (spread <= 1e-7 * scale).all():
        return None
    vec = sample[0]
    shown = ", ".join(M.fmt(v) for v in vec[:8]) + (", …" if len(vec) > 8 else "")
    seen = len(sample)
    span = D.step_span(trace, rows)
    sev, conf = ("error", 0.95) if seen >= 32 else ("warning", 0.6)
    evidence = (f"all {seen} sampled target rows over steps {span[0]}–{span[1]} are the same vector "
                f"[{shown}] ({len(vec)} columns)")
    return Finding(code=CODE, kind="cause", severity=sev, confidence=conf, steps=span, layer=None,
                   title="All targets are the same vector", evidence=evidence, fix=FIX)
