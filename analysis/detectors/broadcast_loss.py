"""broadcast_loss — output and target shapes differ and an element-wise loss broadcast them.

Looks at: the first batch's full shapes of ``outputs`` and ``targets``, the loss class
    (``meta.loss``), the outputs' spread across rows (``col_std``) against the targets'
    (``targets/std``) and the loss against the targets' variance, over the late steps.
Fires when: the shapes broadcast to a larger one (e.g. ``(B, 1)`` with ``(B,)`` → ``(B, B)``)
    and the loss is element-wise (MSELoss, L1Loss, SmoothL1Loss, HuberLoss; or no loss
    module given and dense targets). Broadcasting compares every output with every target
    of the batch, so the best the model can do is one value per batch: confirmed when the
    outputs' spread is < 30 % of the targets' and (MSE) the loss never falls below ~the
    targets' variance. Error when confirmed (warning without a known loss class); info when
    the shapes differ but the run does not show it (the loss may see reshaped tensors).
Evidence: both shapes and the broadcast shape, the spread ratio, the loss against the
    targets' variance, the steps.
Fix: make the shapes equal before the loss: ``target.unsqueeze(1)`` (or ``output.squeeze(1)``),
    or ``.view_as(output)``; torch's "Using a target size … different to the input size"
    warning points at this.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "broadcast_loss"


@detector(code=CODE, kind="cause", requires=("outputs", "targets"))
def detect(trace: Trace) -> Finding | None:
    out, tgt = D.shape(trace, "outputs"), D.shape(trace, "targets")
    if out is None or tgt is None or out == tgt:
        return None
    cls = D.loss_class(trace)
    if not (cls in M.ELEMENTWISE_LOSSES or (cls is None and D.target_kind(trace) == "dense")):
        return None
    both = M.broadcast_shape(out, tgt)
    if both is None or int(np.prod(both)) <= max(int(np.prod(out)), int(np.prod(tgt))):
        return None
    rows = D.late(trace)
    ratio, floor_share, var = _collapse(trace, rows, cls)
    name = cls or "the loss"
    shapes = f"outputs have shape {tuple(out)} and targets {tuple(tgt)}; {name} broadcasts them to {both}"
    confirmed = ratio < 0.3 and (floor_share >= 0.8 if cls in (None, "MSELoss") else True)
    fix = (f"make the shapes equal before the loss: targets.unsqueeze(-1) or .view_as(outputs) to get "
           f"{tuple(out)} (or outputs.squeeze(-1) to get {tuple(tgt)}); torch warns 'Using a target size "
           "that is different to the input size' for exactly this")
    span = D.step_span(trace, rows)  # the window the evidence quotes; the fault acts from step 0
    if not confirmed:
        evidence = (f"{shapes}, but the run does not show it (output spread {M.fmt(ratio)}× the targets'): "
                    "perhaps the loss sees reshaped tensors")
        return Finding(code=CODE, kind="cause", severity="info", confidence=0.3, steps=span, layer=None,
                       title="Output and target shapes differ", evidence=evidence, fix=fix)
    evidence = (f"{shapes}: every output is compared with every target of the batch, so the best is one "
                f"value per batch — over steps {span[0]}–{span[1]} the outputs' spread across rows is "
                f"{M.fmt(ratio)}× the targets'")
    if cls in (None, "MSELoss") and np.isfinite(var):
        evidence += (f", and the loss stays at or above the targets' variance ({M.fmt(var)}) on "
                     f"{floor_share:.0%} of those steps")
    known = cls is not None
    return Finding(code=CODE, kind="cause", severity="error" if known else "warning",
                   confidence=0.95 if known else 0.75, steps=D.step_span(trace), layer=None,
                   title=f"Loss broadcasts outputs {tuple(out)} against targets {tuple(tgt)}",
                   evidence=evidence, fix=fix)


def _collapse(trace: Trace, rows: slice, cls: str | None) -> tuple[float, float, float]:
    """(output spread / target spread, share of steps with loss ≥ 0.8 var(target), var(target))."""
    if not (D.has(trace, "outputs", "col_std") and D.has(trace, "targets", "std")):
        return np.nan, np.nan, np.nan
    cs = np.asarray(D.read(trace, "outputs", "col_std", rows), np.float64)
    out_spread = np.sqrt(M.nanmean(cs * cs, axis=1))
    t_std = D.column(trace, "targets", "std")[rows]
    ok = np.isfinite(out_spread) & np.isfinite(t_std) & (t_std > 0)
    if not ok.any():
        return np.nan, np.nan, np.nan
    ratio = float(np.median(out_spread[ok]) / np.median(t_std[ok]))
    loss = trace.loss()[rows]
    var = t_std**2
    good = ok & np.isfinite(loss)
    share = M.frac(loss[good] >= 0.8 * var[good]) if good.any() else np.nan
    return ratio, share, float(np.median(var[ok]))
