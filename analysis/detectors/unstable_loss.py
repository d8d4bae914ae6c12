"""unstable_loss — a hand-written loss turns Inf/NaN once the model is confident.

Looks at:   the step where the loss first becomes non-finite, and at that step the outputs
            (``outputs/nonfinite``, their range), the inputs and targets, and the loss over
            the steps before; the loss function in the metadata.
Fires when: the loss goes non-finite while the outputs it was computed from are finite and
            no larger than the model's recent outputs (≤ 3x their range over the steps
            before: no blow-up), the batch's inputs and targets are finite, and the loss had
            been falling (the level before is below the start and not rising): the
            non-finite value came from the loss's own arithmetic — ``log`` of a probability
            that underflowed to 0 (``-log(softmax(x))``, ``log(sigmoid(x))``), ``exp`` that
            overflowed, a division by a std that reached 0. Not for losses that are stable
            for finite inputs (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, ``MSELoss``…).
Evidence:   the step, the loss before, the finite outputs (their largest magnitude, the mean
            top probability: how confident the model was).
Onset:      the first step whose loss is non-finite while the outputs it came from are finite
Fix:        compute the loss from logits with the fused, stable functions:
            ``F.cross_entropy(logits, y)`` instead of ``-log(softmax(logits))``,
            ``F.log_softmax``, ``F.logsigmoid``, ``F.binary_cross_entropy_with_logits``;
            add an epsilon to denominators (``/ (std + 1e-8)``).
"""

from __future__ import annotations

import numpy as np

from analysis.detectors import _data as D
from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "unstable_loss"
# Losses whose value is finite whenever their inputs are (fused log-sum-exp, clamped logs).
STABLE = {"CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "MSELoss", "L1Loss", "SmoothL1Loss",
          "HuberLoss", "MultiMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss",
          "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss"}
BEFORE = 50  # steps before the non-finite one that tell how the run was doing


def _finite_at(trace: Trace, group: str, row: int) -> bool | None:
    if not D.has(trace, group, "nonfinite"):
        return None
    v = float(D.column(trace, group, "nonfinite")[row])
    return None if not np.isfinite(v) else v == 0


def _out_range(trace: Trace) -> np.ndarray:
    mn, mx = D.column(trace, "outputs", "min"), D.column(trace, "outputs", "max")
    return np.fmax(np.abs(mn), np.abs(mx))


@detector(code=CODE, kind="cause", requires=("steps/loss", "outputs"))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    p = ctx.profile
    r = p.first_nonfinite
    if p.finite or r < 5 or D.loss_class(trace) in STABLE:
        return None
    if _finite_at(trace, "outputs", r) is not True:
        return None
    if _finite_at(trace, "inputs", r) is False or _finite_at(trace, "targets", r) is False:
        return None
    loss = ctx.loss
    before = loss[max(0, r - BEFORE):r]
    before = before[np.isfinite(before)]
    if len(before) < 3 or not np.isfinite(p.start) or p.start <= 0:
        return None
    level = float(np.median(before))
    recent = float(np.median(before[-max(3, len(before) // 5):]))
    if not (level < p.start and recent <= 1.5 * level):
        return None  # the loss was not falling: a blow-up, not the loss's arithmetic
    rng = _out_range(trace)
    prior = rng[max(0, r - BEFORE):r]
    prior = prior[np.isfinite(prior)]
    if not np.isfinite(rng[r]) or (len(prior) and rng[r] > 3 * float(np.max(prior))):
        return None
    s0 = int(trace.steps[r])
    value = loss[r]
    multi = D.columns(trace, "outputs") >= 2 and D.has(trace, "outputs", "softmax_maxprob")
    prob = D.column(trace, "outputs", "softmax_maxprob")[r] if multi else np.nan
    conf_text = f", mean top softmax probability {fmt(prob, 3)}" if np.isfinite(prob) else ""
    name = D.loss_class(trace) or "the loss computed in the training loop (no loss_fn given)"
    return Finding(
        code=CODE, kind="cause", severity="error", confidence=0.9,
        steps=[s0, int(trace.steps[-1])], layer=None,
        title=f"The loss turned {fmt(value)} at step {s0} from finite outputs",
        evidence=(f"step {s0}: loss {fmt(value)} while the model's outputs were finite (largest "
                  f"|output| {fmt(rng[r])}, no larger than over the steps before{conf_text}) and the batch "
                  f"was finite; the loss had fallen from {fmt(p.start)} to {fmt(level)} over the "
                  f"{len(before)} steps before: the non-finite value came from {name}'s own arithmetic "
                  "(a log of a probability that underflowed to 0, an exp that overflowed, or a division "
                  "by 0) once the model grew confident"),
        fix=("compute the loss from logits with the stable fused functions: F.cross_entropy(logits, y) "
             "instead of -log(softmax(logits)), F.log_softmax / F.logsigmoid instead of log(softmax) / "
             "log(sigmoid), F.binary_cross_entropy_with_logits; add an epsilon to any denominator "
             "(x / (std + 1e-8)) or clamp before log (torch.log(p.clamp_min(1e-12)))"),
        marks={"onset": s0, "events": [s0], "lane": "loss", "views": ["timeline", "outputs"]},
    )
