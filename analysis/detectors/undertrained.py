"""undertrained — training stopped while the loss was still falling steeply.

Looks at:   the loss curve in 40 bins (bin medians, so batch noise does not count): its
            robust slope over the last quarter of the run against the third quarter, the
            initial loss and the final loss.
Fires when: the loss is finite and, over the last quarter, still fell by ≥ 5 % of the initial
            loss and ≥ 15 % of its final value, at a relative (log) rate ≥ 40 % of the quarter
            before's (it had not begun to level off), by more than 3 standard errors of the
            bins' robust scatter around the trend. A run that converged (flat tail), a
            schedule that annealed to zero, a long plateau at a good value, or a loss
            creeping towards zero by tiny absolute amounts does not count.
Evidence:   the loss at the start of the last quarter and at the end, the drop per quarter,
            a projection of what another quarter of training would give.
Onset:      0: the loss never left its falling course; the run was too short from the start
Fix:        train longer (more epochs or steps) and keep the schedule's end in step with the
            new length; a higher learning rate only if the updates are small (see
            ``lr_too_low``).
"""

from __future__ import annotations

import numpy as np

from analysis import metrics as M
from analysis.detectors import _events as E
from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "undertrained"
BINS = 40


def _drop(b: np.ndarray, lo: int, hi: int) -> float:
    """Fall of the bin medians over bins ``lo:hi`` from their robust slope (positive = falling)."""
    seg = b[lo:hi]
    return float(-M.theil_sen(np.arange(len(seg)), seg) * len(seg))


@detector(code=CODE, kind="cause", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    p = ctx.profile
    if not p.finite or p.diverged or ctx.n < 4 * BINS or not (p.start > 0):
        return None
    b = M.binned(ctx.loss, BINS)
    if not np.isfinite(b).all():
        return None
    q = BINS // 4
    if not (b > 0).all():
        return None
    d4 = _drop(b, 3 * q, BINS)
    lb = np.log(b)
    l4, l3 = _drop(lb, 3 * q, BINS), _drop(lb, 2 * q, 3 * q)
    end = float(np.median(b[-2:]))
    tail = lb[3 * q:]
    x = np.arange(len(tail))
    resid = tail - (np.median(tail) + M.theil_sen(x, tail) * (x - x.mean()))
    noise = E.robust_spread(resid)
    noise = noise if np.isfinite(noise) else 0.0
    drop_se = noise * np.sqrt(12.0 / len(tail))  # standard error of a fitted drop over the quarter
    # Still falling: by an amount that matters against the start and the end, at a relative
    # (log) rate close to the quarter before's, clear of the bin-to-bin noise.
    steep = d4 >= 0.05 * p.start and d4 >= 0.15 * end and l4 >= 0.4 * max(l3, 0.0)
    if not steep or not l4 > 3 * drop_se:
        return None
    edges = M.bin_edges(ctx.n, BINS)
    s_tail = ctx.step(int(edges[3 * q]))
    last = ctx.step(ctx.n - 1)
    rel = d4 / end
    projected = max(end - d4, 0.0)
    return Finding(
        code=CODE, kind="cause", severity="warning", confidence=float(np.clip(0.5 + 0.3 * rel, 0.5, 0.8)),
        steps=[ctx.step(0), last], layer=None,
        title=f"Training stopped while the loss was still falling ({rel:.0%} over the last quarter)",
        evidence=(f"loss {fmt(p.start)} at the start, {fmt(float(b[3 * q]))} at step {s_tail}, {fmt(end)} at "
                  f"the end (step {last}): it fell {fmt(d4)} over the last quarter of the run, "
                  f"{np.expm1(l4):.0%} of its level, against {np.expm1(l3):.0%} over the quarter before: no "
                  f"sign of levelling off; another quarter at this rate would reach "
                  f"about {fmt(projected)}"),
        fix=("train longer (more epochs or steps; stretch the learning-rate schedule with it) and stop on "
             "a validation loss that has stopped improving, not on a fixed step count"),
        marks={"onset": ctx.step(0), "events": [s_tail], "lane": "loss", "views": ["timeline"]},
    )
