"""constant_prediction — one class (or zero) predicted for every input.

Looks at: per step over the last 20 % of the run, the predicted class of each row
    (``outputs/argmax_hist``; for one output column, its sign, or 0.5 for probabilities) and
    the target classes of the same batch (``targets/class_hist``, or a 0/1 target column);
    for real-valued targets, whether the sampled outputs are all exactly 0.
Fires when: in each batch one class takes on average ≥ 90 % of the predictions, and the other
    classes are predicted at ≤ 10 % of the rate they occur in the batch's targets (which
    hold ≥ 2 % of other classes): warning (info with fewer than 5 late steps). The class may
    change between steps (constant inputs, an oscillating bias). Regression: ≥ 99 % of late
    sampled outputs exactly 0 while the targets are not.
Evidence: the predicted share of that class, the targets' share of it, the steps.
Onset: the first step from which one class takes ≥ 90 % of each batch's predictions.
Fix: a symptom: see the cause ranked above it (class imbalance, a dominant output bias,
    probabilities fed to a logit loss, a saturated or dead output layer, a learning rate
    far off).
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "constant_prediction"
FIX = "a symptom: fix the cause ranked above it; then check per-class predictions on held-out data"


@detector(code=CODE, kind="symptom", requires=("outputs", "targets"))
def detect(trace: Trace) -> Finding | None:
    rows = D.late(trace)
    span = D.step_span(trace, rows)
    n_late = len(trace.steps[rows])
    counts = D.class_counts(trace, rows)
    if counts is None:
        return _zero_regression(trace, rows, span, n_late)
    pred, truth = counts
    ok = (pred.sum(1) > 0) & (truth.sum(1) > 0)
    if ok.sum() < 1:
        return None
    pred, truth = pred[ok], truth[ok]
    if (D.folded_rows(trace, "outputs") or 0) < 8:  # batches too small to judge one by one: pool them
        pred, truth = pred.sum(0, keepdims=True), truth.sum(0, keepdims=True)
    top = pred.argmax(1)
    idx = np.arange(len(top))
    p_top = pred[idx, top] / pred.sum(1)  # share of each batch given its most predicted class
    q_top = truth[idx, top] / truth.sum(1)  # share of that batch's targets in that class
    other_pred, other_true = float(np.mean(1 - p_top)), float(np.mean(1 - q_top))
    if float(np.mean(p_top)) < 0.9 or other_true < 0.02 or other_pred > 0.1 * other_true:
        return None
    conf = 0.6 + 0.35 * (1 - other_pred / (0.1 * other_true))
    classes, n_of = np.unique(top, return_counts=True)
    k, k_steps = int(classes[np.argmax(n_of)]), float(n_of.max() / len(top))
    share_true = float(truth[:, k].sum() / truth.sum())
    if k_steps >= 0.9:
        title = f"Predicts class {k} for every input"
        what = f"class {k} for {float(pred[:, k].sum() / pred.sum()):.1%} of rows"
    else:
        title = "Predicts one class for every input of a batch"
        what = (f"a single class for {float(np.mean(p_top)):.1%} of each batch's rows (class {k} in "
                f"{k_steps:.0%} of steps, {len(classes)} classes over time)")
    span = [min(D.evidence_onset(trace, _one_class_rows(trace)), span[0]), span[1]]
    evidence = (f"over steps {span[0]}–{span[1]} the model predicts {what}, while {share_true:.1%} of the "
                f"targets are class {k} and each batch holds {other_true:.0%} of other classes on average")
    return Finding(code=CODE, kind="symptom", severity="warning" if n_late >= 5 else "info", confidence=conf,
                   steps=span, layer=None, title=title, evidence=evidence, fix=FIX)


def _one_class_rows(trace: Trace):
    """Per-row test: one class takes ≥ 90 % of a batch's predictions."""
    def per_row(rows):
        counts = D.class_counts(trace, rows)
        if counts is None:
            return np.zeros(0, bool), np.zeros(0, bool)
        pred = counts[0]
        total = pred.sum(1)
        with np.errstate(all="ignore"):
            share = pred.max(1) / total
        return (total > 0) & (share >= 0.9), total > 0
    return per_row


def _zero_regression(trace: Trace, rows: slice, span: list[int], n_late: int) -> Finding | None:
    if not (D.has(trace, "outputs", "sample") and D.has(trace, "targets", "sample")):
        return None
    small = D.late(trace, cap=500)
    out = M.finite(D.read(trace, "outputs", "sample", small))
    tgt = M.finite(D.read(trace, "targets", "sample", small))
    if out.size < 16 or tgt.size < 16:
        return None
    zero = M.frac(out == 0)
    if zero < 0.99 or M.frac(tgt == 0) > 0.5:
        return None
    evidence = (f"over steps {span[0]}–{span[1]} {zero:.0%} of sampled outputs are exactly 0, while only "
                f"{M.frac(tgt == 0):.0%} of the targets are (targets range {M.fmt(float(tgt.min()))} to "
                f"{M.fmt(float(tgt.max()))})")
    return Finding(code=CODE, kind="symptom", severity="warning" if n_late >= 5 else "info", confidence=0.85,
                   steps=span, layer=None, title="Predicts 0 for every input", evidence=evidence, fix=FIX)
