"""loss_diverging — the training loss grows instead of falling, or becomes NaN/Inf.

Looks at:   the loss per step (robust bin medians, so single noisy batches do not count).
Fires when: the loss goes non-finite (error), or the median of its last tenth ends at least
            2x above the best level reached earlier (error from 10x), by a margin that
            matters against the initial loss (a converged loss wobbling near zero is not
            diverging), or the mean of its last tenth is ≥ 2x the initial loss (spikes that
            the median hides; error from 10x).
Evidence:   the best loss and its step, the final loss, the ratio, the step where the
            final rise began or the loss first became non-finite.
Fix:        find the cause ranked above (learning rate, exploding gradients, missing
            zero_grad…); meanwhile lower the learning rate, clip gradients, and keep the
            checkpoint from the best step.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace


@detector(code="loss_diverging", kind="symptom", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    p = ctx.profile
    if not p.diverged:
        return None
    last = ctx.n - 1
    if not p.finite:
        value = ctx.loss[p.first_nonfinite]
        before = f"; it was {fmt(p.end)} just before" if np.isfinite(p.end) else ""
        return Finding(
            code="loss_diverging", kind="symptom", severity="error", confidence=0.97,
            steps=ctx.span(p.first_nonfinite, last), layer=None,
            marks={"events": [ctx.step(p.first_nonfinite)]},
            title=f"Loss became {fmt(value)} at step {ctx.step(p.first_nonfinite)}",
            evidence=(f"loss {fmt(p.start)} at the start, best {fmt(ctx.loss[p.best_row])} at step "
                      f"{ctx.step(p.best_row)}, then {fmt(value)} at step {ctx.step(p.first_nonfinite)}"
                      f"{before}; every later update is computed from non-finite values"),
            fix="fix the cause ranked above; restart from a checkpoint before the step where it "
                "went non-finite, with a lower learning rate and gradient clipping",
        )
    if p.swings and not p.rise >= np.log10(2):
        factor = p.end_mean / p.start
        return Finding(
            code="loss_diverging", kind="symptom", severity="error" if factor >= 10 else "warning",
            confidence=min(0.95, 0.6 + 0.3 * min(np.log10(factor), 1.0)),
            steps=ctx.span(p.diverge_row, last), layer=None,
            title=f"Loss swings to {fmt(factor)}x its starting value",
            evidence=(f"loss {fmt(p.start)} at the start; over the last tenth of the run it averages "
                      f"{fmt(p.end_mean)} ({fmt(factor)}x the untrained model's loss) although its median is "
                      f"{fmt(p.end)}: most batches fit, a few cost orders of magnitude more; it first "
                      f"exceeded 2x the start at step {ctx.step(p.diverge_row)}"),
            fix="fix the cause ranked above (usually a learning rate far too high); lower the learning rate "
                "and clip gradients",
        )
    factor = p.end / p.best if p.best > 0 else float("nan")
    strong = p.rise >= 1.0
    conf = min(0.95, 0.6 + 0.3 * min(p.rise, 1.0) + (0.05 if ctx.loss_bad else 0.0))
    ratio_text = f"{fmt(factor)}x" if np.isfinite(factor) else f"by {fmt(p.end - p.best)}"
    return Finding(
        code="loss_diverging", kind="symptom", severity="error" if strong else "warning",
        confidence=conf, steps=ctx.span(p.diverge_row, last), layer=None,
        marks={"events": [ctx.step(p.best_row)],
               "hlines": [{"lane": "loss", "y": float(ctx.loss[p.best_row]), "label": "best loss"}]},
        title=f"Loss rose {ratio_text} above its best after step {ctx.step(p.diverge_row)}",
        evidence=(f"loss {fmt(p.start)} at the start, best {fmt(ctx.loss[p.best_row])} at step "
                  f"{ctx.step(p.best_row)}, "
                  f"then rising from step {ctx.step(p.diverge_row)} to a median of {fmt(p.end)} over the "
                  f"last tenth of the run ({ratio_text} the best)"),
        fix=(f"fix the cause ranked above; keep the weights from step {ctx.step(p.best_row)} "
             "(loss minimum), and lower the learning rate or clip gradients before resuming"),
    )
