"""loss_zero_early — the loss is near zero within the first epoch.

Looks at: the recorded loss per step (a trailing 5-step median against spikes), over the
    first epoch when one is known (the first step at which a scalar was logged with
    ``rec.log``, done once per epoch) or else the first 20 % of the run; the rest of the run.
Fires when: the loss is exactly 0 on ≥ 90 % of those early steps (warning), or it falls to
    ≤ 0.1 % of its initial value in that window and stays ≤ 1 % of it afterwards (warning;
    info when it only reaches ≤ 1 %). A task this easy this fast usually means the answer
    is in the inputs, or there is nothing to predict.
Evidence: the initial loss, how low it got and by which step, the level afterwards.
Fix: a symptom: see the cause ranked above it (label leakage, constant targets); otherwise
    check the loss on held-out data and that the loss sees the right tensors.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "loss_zero_early"
FIX = ("a symptom: fix the cause ranked above it (an input that gives the label away, targets that never "
       "change); otherwise evaluate on held-out data and check that the loss sees the right tensors")


@detector(code=CODE, kind="symptom")
def detect(trace: Trace) -> Finding | None:
    loss = trace.loss()
    if len(loss) < 3:
        return None
    end = D.first_epoch_end(trace)
    window = slice(0, end + 1) if end is not None else D.early(trace)
    where = "the first epoch" if end is not None else "the first 20 % of the run"
    part = loss[window]
    finite = part[np.isfinite(part)]
    if len(finite) < 3:
        return None
    span = D.step_span(trace, window)
    zero = M.frac(finite == 0)
    if zero >= 0.9:
        evidence = (f"the loss is exactly 0 on {zero:.0%} of {len(finite)} steps in {where} "
                    f"(steps {span[0]}–{span[1]}): there is no error to learn from (e.g. cross-entropy over "
                    "a single output column, or targets equal to what the model already outputs)")
        return Finding(code=CODE, kind="symptom", severity="warning", confidence=0.85, steps=span, layer=None,
                       title="Loss is exactly zero from the start", evidence=evidence, fix=FIX)
    init = M.initial_level(loss, 3)
    if not (np.isfinite(init) and init > 0):
        return None
    smooth = M.rolling_median(part, 5)
    if not np.isfinite(smooth).any():
        return None
    row = int(np.nanargmin(smooth))
    low = float(smooth[row]) / init
    after = M.nanmedian(loss[window.stop:]) / init if window.stop < len(loss) else low
    if low > 0.01:
        return None
    stays = not np.isfinite(after) or after <= 0.01
    sev = "warning" if low <= 1e-3 and stays else "info"
    conf = (0.6 + 0.3 * min(np.log10(1e-3 / max(low, 1e-12)) / 3, 1.0)) if sev == "warning" else 0.3
    step = int(trace.steps[row])
    evidence = (f"the loss fell from {M.fmt(init)} to {M.fmt(low * init)} ({M.fmt(low * 100)} % of it) by "
                f"step {step}, within {where}")
    if window.stop < len(loss) and np.isfinite(after):
        evidence += f", and sits at {M.fmt(after * 100)} % of it afterwards"
    return Finding(code=CODE, kind="symptom", severity=sev, confidence=conf, steps=[span[0], step],
                   layer=None, title="Loss near zero within the first epoch", evidence=evidence, fix=FIX)
