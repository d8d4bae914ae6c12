"""constant_prediction — one class (or zero) predicted for every input.

Looks at: over the last 20 % of the run, the predicted class of each row
    (``outputs/argmax_hist``; for one output column, its sign, or 0.5 for probabilities) and
    the target classes of the same steps (``targets/class_hist``, or a 0/1 target column);
    for real-valued targets, whether the sampled outputs are all exactly 0.
Fires when: one class takes ≥ 90 % of the predictions and the other classes are predicted
    at ≤ 10 % of the rate they occur in the targets (which hold ≥ 2 % of other classes):
    warning (info with fewer than 5 late steps). Regression: ≥ 99 % of late sampled outputs
    exactly 0 while the targets are not.
Evidence: the predicted share of that class, the targets' share of it, the steps.
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


def target_shares(trace: Trace, rows: slice) -> np.ndarray | None:
    """Share of each class among the targets over ``rows`` (None for real-valued targets)."""
    kind, cols = D.target_kind(trace), D.columns(trace, "targets")
    if kind == "index" and D.has(trace, "targets", "class_hist"):
        return M.class_shares(D.read(trace, "targets", "class_hist", rows))
    if D.has(trace, "targets", "sample"):
        v = np.asarray(D.read(trace, "targets", "sample", rows), np.float64)
        fv = M.finite(v)
        if not fv.size or M.frac(np.isclose(fv, 0) | np.isclose(fv, 1)) < 0.99:
            return None
        if cols == 1:
            return M.binary_shares(fv, 0.5)
        flat = D.flat_rows(v)
        if len(flat) and np.allclose(flat.sum(axis=1), 1):
            return M.class_shares(np.eye(flat.shape[1])[flat.argmax(axis=1)])
    return None


@detector(code=CODE, kind="symptom", requires=("outputs", "targets"))
def detect(trace: Trace) -> Finding | None:
    rows = D.late(trace)
    truth = target_shares(trace, rows)
    span = D.step_span(trace, rows)
    n_late = rows.stop - rows.start
    if truth is None:
        return _zero_regression(trace, rows, span, n_late)
    pred = D.predicted_shares(trace, rows)
    if pred is None or pred.sum() <= 0:
        return None
    k = int(np.argmax(pred))
    s_pred = float(pred[k])
    s_true = float(truth[k]) if k < len(truth) else 0.0
    other_true, other_pred = 1 - s_true, 1 - s_pred
    if s_pred < 0.9 or other_true < 0.02 or other_pred > 0.1 * other_true:
        return None
    conf = 0.6 + 0.35 * (1 - other_pred / (0.1 * other_true))
    evidence = (f"over steps {span[0]}–{span[1]} the model predicts class {k} for {s_pred:.1%} of rows, "
                f"while {s_true:.1%} of the targets are class {k}")
    return Finding(code=CODE, kind="symptom", severity="warning" if n_late >= 5 else "info", confidence=conf,
                   steps=span, layer=None, title=f"Predicts class {k} for every input", evidence=evidence,
                   fix=FIX)


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
