"""loss_plateau — the loss stopped improving far from a good value.

Looks at:   the loss per step (bin medians), and the loss a constant prediction would
            score on the recorded targets (class-frequency entropy for cross-entropy,
            target variance for MSE, …) as the "learned nothing" level.
Fires when: the second half of the run removed < 5 % of the loss, without a steady
            decrease (≥ 1 % and 3 standard errors between its two quarters), while the loss
            still sits at ≥ 80 % of the constant-prediction level (or, without targets,
            within 15 % of where it started). Not on a converged run (far below the
            constant level) nor on one still improving steadily.
Evidence:   start, end and best loss, how much each half of the run removed, the
            constant-prediction level, and the step from which the loss stayed flat.
Fix:        find the cause ranked above (learning rate, dead or saturated units,
            initialisation, regularisation, frozen weights); a plateau is a symptom.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import bin_edges, binned, decrease_test, quiet
from analysis.trace import Trace

LATE_DROP = 0.05  # the second half removed less than this fraction of the loss
NEAR_BASELINE = 0.8
NEAR_START = 0.15


@quiet
def flat_from(loss: np.ndarray, end: float, start: float) -> int:
    """First row from which the (binned) loss stays within a small band around its end value."""
    n = len(loss)
    n_bins = max(1, min(50, n // 4))
    b = binned(loss, n_bins)
    tol = 0.05 * max(abs(end), abs(start - end), 1e-12)
    dev = np.abs(np.nan_to_num(b - end, nan=np.inf))
    tail_max = np.maximum.accumulate(dev[::-1])[::-1]
    ok = np.flatnonzero(tail_max <= tol)
    edges = bin_edges(n, n_bins)
    return int(edges[ok[0]]) if len(ok) else int(edges[-2])


@detector(code="loss_plateau", kind="symptom", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    p = ctx.profile
    if ctx.n < 10 or not p.finite or p.diverged or not np.isfinite(p.end):
        return None
    if not (p.late_drop < LATE_DROP):
        return None  # still improving
    first_bad = p.first_nonfinite if p.first_nonfinite >= 0 else ctx.n
    drop, z = decrease_test(ctx.loss[first_bad // 2:first_bad])
    if drop >= 0.01 and z >= 3:
        return None  # small but steady progress over the second half: not stuck yet
    base = ctx.baseline
    if np.isfinite(base) and base > 0:
        level = p.end / base
        if level < NEAR_BASELINE:
            return None
        conf = 0.6 + 0.3 * min(max((level - NEAR_BASELINE) / 0.2, 0.0), 1.0)
        where = (f"{fmt(p.end)} is {fmt(100 * level)} % of the {fmt(base)} a constant prediction "
                 f"(the target statistics alone) would score")
    else:
        if not (p.drop < NEAR_START):
            return None
        conf = 0.55 + 0.3 * min(max((NEAR_START - p.drop) / NEAR_START, 0.0), 1.0)
        where = f"{fmt(p.end)} is still {fmt(100 * (1 - p.drop))} % of the starting {fmt(p.start)}"
    conf += 0.05 * min(max((LATE_DROP - p.late_drop) / LATE_DROP, 0.0), 1.0)
    first_half = (p.start - p.mid) / abs(p.start) if p.start else float("nan")
    row = flat_from(ctx.loss, p.end, p.start)
    return Finding(
        code="loss_plateau", kind="symptom", severity="warning", confidence=min(conf, 0.95),
        steps=ctx.span(row, ctx.n - 1), layer=None,
        title=f"Loss stuck near {fmt(p.end)} from step {ctx.step(row)}",
        evidence=(f"loss {fmt(p.start)} at the start, {fmt(p.mid)} at mid-run, {fmt(p.end)} at the end "
                  f"(best {fmt(p.best)}); the first half removed {fmt(100 * first_half)} % of it, the "
                  f"second half {fmt(100 * p.late_drop)} %; {where}"),
        fix="a plateau is a symptom: fix the cause ranked above (learning rate, dead or saturated "
            "units, initialisation, regularisation, frozen weights, the data pipeline)",
    )
