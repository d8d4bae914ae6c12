"""over_regularization — weight decay or dropout so strong that the model cannot fit the data.

Looks at:   the optimiser's weight_decay and learning rate, the weight norms of the trained
            weight matrices from start to end, dropout probabilities of the model's Dropout
            modules, and the loss against a constant predictor's level.
Fires when: the loss does not learn (ends near a constant predictor's level, or barely below
            its start) and either weight decay is on and the weights shrank to ≤ 50 % of
            their initial norm (error from ≤ 10 %, or ≤ 50 % when the decay term outweighs
            the data in each update: lr·wd vs the update ratio for SGD/AdamW, wd·‖w‖ vs ‖g‖
            for Adam-style L2; then ≤ 80 % is enough for a warning), or a dropout
            probability is ≥ 0.7 (error from 0.85); dropout ≥ 0.8 also when the loss learns
            but stays far from good (warning). Capped at warning when dead ReLUs from
            the first step explain why the weights only decayed.
Evidence:   weight_decay, lr, shrink per step, the weight-norm shrink factor, dropout p, the
            loss against the constant-prediction level.
Fix:        lower weight_decay (typically 1e-5-1e-2; AdamW for Adam) and dropout
            (typically 0.1-0.5), quoting the values of the run.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

DROPOUT_TYPES = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")


def dropouts(trace: Trace) -> list[tuple[str, float]]:
    out = []
    for name, info in trace.module_info.items():
        p = (info.get("args") or {}).get("p")
        if info.get("type") in DROPOUT_TYPES and isinstance(p, (int, float)):
            out.append((name, float(p)))
    return out


@detector(code="over_regularization", kind="cause", requires=("steps/loss", "params/w_norm"))
@quiet
def detect(trace: Trace) -> Finding | None:  # noqa: C901 - two regularisers, one verdict
    ctx = context(trace)
    if ctx.loss_good or not ctx.profile.finite or ctx.profile.diverged:
        return None
    stuck = ctx.loss_bad
    wd, lr = ctx.weight_decay, ctx.lr_max
    shrink = ctx.weight_shrink
    drops = dropouts(trace)
    p_name, p_max = max(drops, key=lambda d: d[1]) if drops else (None, 0.0)
    parts, fixes, level, conf = [], [], 0, 0.0
    share = ctx.decay_share
    dominant = share >= (0.5 if ctx.opt_class in ("SGD", "AdamW") else 1.0)
    if stuck and wd > 0 and np.isfinite(shrink) and (shrink <= 0.5 or (dominant and shrink <= 0.8)):
        level = 2 if shrink <= 0.1 or (dominant and shrink <= 0.5) else 1
        conf = 0.6 + 0.3 * min(np.log10(1 / max(shrink, 1e-30)) / 2, 1.0) + (0.1 if dominant else 0.0)
        opt = ctx.opt_class or "the optimiser"
        if opt in ("SGD", "AdamW") and np.isfinite(lr) and lr > 0:
            per_step = f"; {opt} at lr {fmt(lr)} removes ~{fmt(100 * lr * wd)} % of every weight per step"
        else:
            per_step = f" ({opt} at lr {fmt(lr)})"
        n_layers = sum(1 for i in ctx.weights if ctx.trainable[i])
        parts.append(f"weight_decay {fmt(wd)}{per_step}; the weight matrices shrank to {fmt(shrink)} of "
                     f"their initial norm (median over {n_layers} layers)")
        if dominant:
            parts.append(f"the decay term is {fmt(share)}x the data's share of each update")
        fixes.append(f"lower weight_decay from {fmt(wd)} to ~1e-4 (1e-5-1e-2 is the usual range"
                     + ("; use AdamW for decoupled decay" if ctx.opt_class == "Adam" else "") + ")")
    if p_max >= (0.7 if stuck else 0.8):
        dl = 2 if p_max >= 0.85 and stuck else 1
        level = max(level, dl)
        conf = max(conf, 0.5 + 0.4 * min((p_max - 0.7) / 0.2, 1.0))
        parts.append(f"{p_name} drops {fmt(100 * p_max)} % of activations in training "
                     f"({len(drops)} dropout module(s), max p {fmt(p_max)})")
        fixes.append(f"lower dropout from p={fmt(p_max)} to 0.1-0.5")
    if level == 0:
        return None
    severity = "error" if level == 2 else "warning"
    by_decay = stuck and wd > 0 and (shrink <= 0.5 or (dominant and shrink <= 0.8))
    dead0 = [j for j, (s, late, _) in ctx.dead.items() if s >= 0.9 and late >= 0.9]
    if dead0 and p_max < 0.7:
        conf *= 0.6
        severity = "warning"
        parts.append(f"but {ctx.mlabel(dead0[0])} is dead from step 0, so its weights only decayed")
    evidence = "; ".join(parts) + f"; {ctx.loss_text()}: the model fits little more than the label statistics"
    return Finding(
        code="over_regularization", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(0, ctx.n - 1), layer=p_name if p_max >= 0.7 and not by_decay else None,
        title="Over-regularisation: " + ("weight decay" if by_decay else "dropout")
        + " keeps the model from fitting",
        evidence=evidence, fix="; ".join(fixes),
    )
