"""output_collapse — the model gives the same output for every input.

Looks at: ``outputs/col_std`` (each column's std across the rows of the batch) over the
    last 20 % of the run, against a reference: the targets' std across the batch for
    real-valued targets (1 when the targets do not vary), or 1 (a nat of logit, or the
    whole probability range) for classification; the same spread early in the run.
Fires when: the batch has more than one row and the outputs' RMS spread across rows is
    ≤ 1 % of that reference over the late steps: warning, with a confidence growing as the
    ratio shrinks (and highest when the outputs are exactly equal).
Evidence: the late spread, the reference, the ratio, the early spread, the steps.
Onset: the first step from which the outputs' spread stays that small.
Fix: a symptom: see the cause ranked above it (constant inputs or targets, dead or
    saturated units, a broadcast loss, too strong regularisation, a learning rate that
    blew the weights up).
"""

from __future__ import annotations

import math

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "output_collapse"


def late_spread(trace: Trace, rows: slice) -> np.ndarray:
    """``(k,)`` RMS over columns of the outputs' std across rows, per step of ``rows``."""
    cs = np.asarray(D.read(trace, "outputs", "col_std", rows), np.float64)
    return np.sqrt(M.nanmean(cs * cs, axis=1))


@detector(code=CODE, kind="symptom", requires=("outputs/col_std",))
def detect(trace: Trace) -> Finding | None:
    batch_rows = D.folded_rows(trace, "outputs")
    if batch_rows is not None and batch_rows <= 1:
        return None
    rows = D.late(trace)
    spread = late_spread(trace, rows)
    ok = np.isfinite(spread)
    if ok.sum() < 3:
        return None
    level = float(np.median(spread[ok]))
    ref, ref_text = _reference(trace, rows)
    ratio = level / ref
    if ratio > 0.01:
        return None
    early = late_spread(trace, D.early(trace))
    early_level = M.nanmedian(early)
    exact = level == 0.0
    conf = 0.9 if exact else 0.6 + 0.3 * min(math.log10(0.01 / max(ratio, 1e-12)) / 2, 1.0)
    span = D.step_span(trace, rows)
    limit = max(0.01, 3 * ratio) * ref

    def per_row(r):
        s = late_spread(trace, r)
        return np.isfinite(s) & (s <= limit), np.isfinite(s)

    span = [min(D.evidence_onset(trace, per_row), span[0]), span[1]]
    evidence = (f"over steps {span[0]}–{span[1]} the outputs vary across the rows of a batch by "
                f"{M.fmt(level)} (RMS of column stds) against {ref_text}: {M.fmt(ratio)}×")
    if np.isfinite(early_level):
        evidence += f"; early in the run they varied by {M.fmt(float(early_level))}"
    short = ok.sum() < 5
    return Finding(code=CODE, kind="symptom", severity="info" if short else "warning", confidence=conf,
                   steps=span, layer=None,
                   title="Same output for every input" if exact else "Outputs barely depend on the input",
                   evidence=evidence,
                   fix="a symptom: fix the cause ranked above it; check that the inputs reach the model and "
                       "vary, and that the last layers are alive")


def _reference(trace: Trace, rows: slice) -> tuple[float, str]:
    if D.target_kind(trace) == "dense" and D.has(trace, "targets", "std"):
        t_std = M.nanmedian(D.column(trace, "targets", "std")[rows])
        if np.isfinite(t_std) and t_std > 0:
            return float(t_std), f"the targets' spread {M.fmt(float(t_std))}"
    form = D.output_form(trace)
    return 1.0, ("the unit logit scale" if form == "logits" else "the probability range")
