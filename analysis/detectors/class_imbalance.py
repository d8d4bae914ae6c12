"""class_imbalance — one class dominates the targets, and the model settles on it.

Looks at: the cumulative target class counts (``targets/class_hist`` for class indices or
    one-hot/probability targets; the share of positives of a single 0/1 column), over an
    evenly thinned set of steps; the predicted classes over the late steps
    (``outputs/argmax_hist``, or the sign / 0.5 threshold of a single output column); the
    loss's ``weight`` / ``pos_weight``.
Fires when: the majority class holds ≥ 75 % of the targets and, in the last 20 % of the
    run, the model predicts the other classes at ≤ 20 % of the rate they occur (it learnt
    the prior, not the task): error from a 90 % majority, warning below; one level lower
    when the loss is already class-weighted. A ≥ 90 % majority without that collapse is
    info (≥ 95 % without recorded outputs: warning).
Evidence: the class shares, the predicted share of the majority class, the steps.
Fix: rebalance: class weights in the loss (``CrossEntropyLoss(weight=…)`` with inverse
    frequencies, ``BCEWithLogitsLoss(pos_weight=neg/pos)``), a ``WeightedRandomSampler``,
    or resampling; judge with per-class recall, not accuracy.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "class_imbalance"


def _weighted(trace: Trace) -> bool:
    args = D.loss_args(trace)
    return any(args.get(k) not in (None, [], 0) for k in ("weight", "pos_weight"))


@detector(code=CODE, kind="cause", requires=("targets",))
def detect(trace: Trace) -> Finding | None:
    shares = D.true_shares(trace)
    if shares is None or (shares > 0).sum() < 2:
        return None
    maj = int(np.argmax(shares))
    s = float(shares[maj])
    if s < 0.75:
        return None
    rows = D.late(trace)
    pred = D.predicted_shares(trace, rows) if trace.has("outputs") else None
    span = D.step_span(trace)
    listed = ", ".join(f"class {i}: {v:.1%}" for i, v in sorted(enumerate(shares), key=lambda t: -t[1])[:4])
    evidence = f"targets over steps {span[0]}–{span[1]}: {listed}"
    weighted = _weighted(trace)
    fix = _fix(shares, maj, weighted)
    title = f"Class {maj} makes up {s:.0%} of the targets"
    if pred is None or maj >= len(pred) or pred.sum() <= 0:
        if s < 0.9:
            return None
        sev = "warning" if s >= 0.95 and not weighted else "info"
        return Finding(code=CODE, kind="cause", severity=sev, confidence=0.5 if sev == "warning" else 0.3,
                       steps=span, layer=None, title=title,
                       evidence=evidence + " (outputs not recorded: the predictions are unknown)", fix=fix)
    minority_true, minority_pred = 1 - s, 1 - float(pred[maj])
    late_span = D.step_span(trace, rows)
    evidence += (f"; over steps {late_span[0]}–{late_span[1]} the model predicts class {maj} for "
                 f"{float(pred[maj]):.1%} of rows, the other classes at "
                 f"{minority_pred / minority_true:.0%} of their {minority_true:.1%} rate")
    if weighted:
        evidence += "; the loss is already class-weighted"
    if minority_pred > 0.2 * minority_true:
        if s < 0.9:
            return None
        return Finding(code=CODE, kind="cause", severity="info", confidence=0.3, steps=span, layer=None,
                       title=title, evidence=evidence, fix=fix)
    sev = "error" if s >= 0.9 else "warning"
    conf = 0.65 + 0.3 * float(np.clip((s - 0.75) / 0.2, 0, 1))
    if weighted:
        sev, conf = ("warning" if sev == "error" else "info"), conf - 0.2
    return Finding(code=CODE, kind="cause", severity=sev, confidence=conf, steps=span, layer=None,
                   title=title + " and the model predicts only it", evidence=evidence, fix=fix)


def _fix(shares: np.ndarray, maj: int, weighted: bool) -> str:
    present = shares > 0
    inv = np.where(present, 1.0 / np.where(present, shares, 1.0), 0.0)
    inv = inv / inv[present].min()
    weights = ", ".join(M.fmt(float(w), 2) for w in inv[:10]) + (", …" if len(inv) > 10 else "")
    if len(shares) == 2:
        pos = float(shares[1])
        pw = (1 - pos) / pos if pos > 0 else float("inf")
        head = (f"weight the rare class: BCEWithLogitsLoss(pos_weight=torch.tensor([{M.fmt(pw, 2)}])) or "
                f"CrossEntropyLoss(weight=torch.tensor([{weights}]))")
    else:
        head = f"weight the classes by inverse frequency: CrossEntropyLoss(weight=torch.tensor([{weights}]))"
    tail = ("; or sample batches with a WeightedRandomSampler; judge the model by per-class recall, "
            "not accuracy")
    if weighted:
        head = "the loss is weighted already: check the weights favour the rare classes enough (" + head + ")"
    return head + tail
