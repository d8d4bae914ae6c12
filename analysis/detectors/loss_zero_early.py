"""loss_zero_early — the loss is near zero within the first epoch.

Looks at: the recorded loss per step (a trailing 5-step median against spikes) over the
    first epoch — told by the first ``rec.log`` (once per epoch) or by the first repeated
    input row — or else the first 10 % of the run; the rest of the run. "Near zero" is
    measured against what a model that ignores its inputs scores: the entropy of the target
    classes (cross-entropy losses), the targets' variance (MSE) or std (L1), and only when
    those are unknown or zero, the initial loss.
Fires when: the loss is exactly 0 on ≥ 90 % of those early steps (warning: there is no error
    to learn from), or it falls to ≤ 1 % of that reference within the window (info, with a
    confidence that grows as it gets lower and stays low). On its own this is also what an
    easy, noiseless task looks like (separable blobs, a smooth signal), so it is never more
    than info: the causes that produce it (label_leakage, constant_targets) carry the
    severity.
Evidence: the reference and what it is, how low the loss got and by which step, the level
    afterwards.
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
CLASS_LOSSES = ("CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss")


def baseline(trace: Trace) -> tuple[float, str] | None:
    """The loss of a model that ignores its inputs, and what it is; None when unknown."""
    cls = D.loss_class(trace)
    if not trace.has("targets"):
        return None
    if cls in CLASS_LOSSES and D.target_classes(trace) is not None:
        shares = D.true_shares(trace)
        if shares is not None:
            p = shares[shares > 0]
            h = float(-(p * np.log(p)).sum())
            return (h, "the entropy of the target classes") if h > 0 else None
    if cls in ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss") and D.target_kind(trace) == "dense":
        std = M.nanmedian(D.column(trace, "targets", "std")[D.thin(trace)])
        if np.isfinite(std) and std > 0:
            if cls == "MSELoss":
                return float(std**2), "the targets' variance"
            return float(std), "the targets' std"
    return None


@detector(code=CODE, kind="symptom")
def detect(trace: Trace) -> Finding | None:
    loss = D.mean_loss(trace)
    if len(loss) < 3:
        return None
    end = D.first_epoch_end(trace)
    window = slice(0, end + 1) if end is not None else D.early(trace, share=0.1)
    where = "the first epoch" if end is not None else "the first 10 % of the run"
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
    ref = baseline(trace)
    if ref is None:
        init = M.initial_level(loss, 3)
        if not (np.isfinite(init) and init > 0):
            return None
        ref = (init, "the initial loss")
    smooth = M.rolling_median(part, 5)
    if not np.isfinite(smooth).any():
        return None
    row = int(np.nanargmin(smooth))
    low = float(smooth[row]) / ref[0]
    after = M.nanmedian(loss[window.stop:]) / ref[0] if window.stop < len(loss) else low
    if low > 0.01 or M.nanmin(part) < 0:  # a loss that goes negative is not "near zero"
        return None
    stays = not np.isfinite(after) or after <= 0.01
    conf = 0.3 + (0.1 if stays else 0.0) + 0.2 * min(np.log10(0.01 / max(low, 1e-12)) / 4, 1.0)
    step = int(trace.steps[row])
    evidence = (f"within {where} the loss fell to {M.fmt(low * ref[0])} by step {step}: {M.fmt(low * 100)} % "
                f"of {M.fmt(ref[0])}, {ref[1]}")
    if window.stop < len(loss) and np.isfinite(after):
        evidence += f"; afterwards it sits at {M.fmt(after * 100)} % of it"
    return Finding(code=CODE, kind="symptom", severity="info", confidence=conf, steps=[span[0], step],
                   layer=None, title="Loss near zero within the first epoch", evidence=evidence, fix=FIX)
