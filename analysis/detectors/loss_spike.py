"""loss_spike — sudden, short-lived jumps of the loss far above its recent level.

Looks at:   the loss per step against its own neighbourhood: the medians of the 10 steps
            before and the 10 steps after each step (fewer in short runs).
Fires when: a step's loss is ≥ 4x the higher of those two levels and ≥ 6 robust spreads
            (MAD) of the run's own step-to-step log-noise above it, by a margin of at least a
            fifth of the initial loss (a converged loss wobbling near zero does not count),
            and the loss comes back (both sides finite: a jump that never returns is
            ``loss_diverging``). Warning from three spikes (two when one is ≥ 10x); a single
            spike the run recovered from is info.
            Warm restarts, planned learning-rate changes and curriculum switches move the
            level for many steps and so do not count.
Evidence:   the spike steps, their height over the local level, the largest.
Onset:      the first spike (a step ≥ 4× the medians of the steps before and after it)
Fix:        look at the cause ranked above (usually a batch far outside the data, or a
            learning rate at the edge of stability); inspect the batches at the marked
            steps; clip gradients to bound what one batch can do.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors import _events as E
from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "loss_spike"
MARGIN = 0.2  # of the initial loss


def loss_spikes(trace: Trace) -> E.Spikes:
    """The loss spikes of ``trace`` (shared with ``data_outlier``)."""
    ctx = context(trace)
    start = ctx.profile.start
    margin = MARGIN * start if np.isfinite(start) and start > 0 else 0.0
    return E.spikes(ctx.loss, margin=margin)


@detector(code=CODE, kind="symptom", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    sp = loss_spikes(trace)
    if not sp.events:
        return None
    ctx = context(trace)
    steps = trace.steps
    peaks = []
    for first, last in sp.events:
        sel = (sp.rows >= first) & (sp.rows <= last)
        k = int(np.argmax(sp.excess[sel]))
        peaks.append((int(sp.rows[sel][k]), float(np.exp(sp.excess[sel][k]))))
    top_row, top_factor = max(peaks, key=lambda p: p[1])
    strong = len(peaks) >= 3 or (len(peaks) >= 2 and top_factor >= 10)
    listed = ", ".join(f"step {int(steps[r])} ({fmt(f)}x)" for r, f in peaks[:6])
    more = f" and {len(peaks) - 6} more" if len(peaks) > 6 else ""
    loss = ctx.loss
    onset = peaks[0][0]
    return Finding(
        code=CODE, kind="symptom", severity="warning" if strong else "info",
        confidence=min(0.9, 0.5 + 0.1 * len(peaks) + 0.1 * np.log10(top_factor)),
        steps=[int(steps[onset]), int(steps[peaks[-1][0]])], layer=None,
        title=(f"Loss spiked {len(peaks)} time{'s' if len(peaks) > 1 else ''}, up to {fmt(top_factor)}x "
               f"its local level (step {int(steps[top_row])})"),
        evidence=(f"{listed}{more}: each step's loss against the median of the steps around it; the "
                  f"largest, {fmt(loss[top_row])} at step {int(steps[top_row])}, against a local level of "
                  f"{fmt(loss[top_row] / top_factor)}; the loss came back after each"),
        fix=("see the cause ranked above; inspect the batches at the marked steps (a corrupt record, a "
             "unit change) and clip gradients (torch.nn.utils.clip_grad_norm_) so one batch cannot "
             "undo training"),
        marks={"onset": int(steps[onset]), "events": [int(steps[r]) for r, _ in peaks],
               "lane": "loss", "views": ["timeline"]},
    )
