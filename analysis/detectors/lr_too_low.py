"""lr_too_low — updates are negligible against the weights, so the loss barely moves.

Looks at:   the update/weight ratio ‖Δw‖/‖w‖ of every trained weight matrix (healthy ≈ 1e-3),
            the relative gradient ‖g‖/‖w‖ per layer and through depth, and the loss curve.
Fires when: every trained weight layer's median update ratio is below 1e-4 (error below
            1e-5; warning below 3e-4 if the loss removed < 10 % of itself) while the loss
            ends near where it started or near a constant predictor's level, and the
            gradients themselves are healthy (not vanishing through depth, not zero from
            dead or saturated units), so the step size, not the gradient, is what is small.
Evidence:   the largest per-layer median update ratio, the loss change, the learning rate.
Fix:        raise the learning rate by the factor that brings updates to ~1e-3 of the weights
            (quoted from the run), or use Adam with lr ~1e-3.
"""

from __future__ import annotations

import numpy as np

from analysis import metrics as M
from analysis.detectors._optim import HEALTHY_UPDATE, clamp01, context, fmt, nice_lr
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import depth_profile, nanmedian, quiet
from analysis.trace import Trace

ADAPTIVE = ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop", "Adagrad", "Adadelta")


def adaptive_shortfall(ctx) -> float:
    """For Adam-like optimizers, the median update ratio over lr/rms(w), the step they take for
    any non-zero gradient (≈1 normally, ≪ 1 when the gradients are ~0). NaN otherwise."""
    if ctx.opt_class not in ADAPTIVE or not np.isfinite(ctx.lr_max) or ctx.lr_max <= 0:
        return float("nan")
    ratios = []
    for i, u in ctx.update_layer_median.items():
        rms = nanmedian(ctx.w_norm[:, i]) / np.sqrt(max(ctx.info[i]["numel"], 1))
        if rms > 0 and np.isfinite(u):
            ratios.append(u / (ctx.lr_max / rms))
    return float(np.median(ratios)) if ratios else float("nan")


def gradient_problem(ctx) -> str | None:
    """Why the gradient, not the step size, may be what is small (None when it looks healthy)."""
    rel = nanmedian(ctx.rel_grad[:, ctx.weights], axis=0) if ctx.weights else np.array([])
    if len(rel) and np.all(np.nan_to_num(rel, nan=0.0) == 0):
        return "the gradients are exactly zero"
    short = adaptive_shortfall(ctx)
    if short < 0.1:
        return (f"{ctx.opt_class} steps only {fmt(short)} of lr/|w|, the size it takes for any non-zero "
                "gradient: the gradients are ~0")
    span, rho = depth_profile(rel)
    if len(rel) >= 3 and np.isfinite(span) and span >= 2 and rho >= 0.6:
        return f"gradients shrink {fmt(10 ** span)}x from the output layer to the input layer"
    dead = [j for j, (_, late, _) in ctx.dead.items() if late >= 0.9]
    if dead:
        return f"{ctx.mlabel(dead[0])} is dead"
    if ctx.saturated_modules:
        return f"{ctx.mlabel(ctx.saturated_modules[0])} is saturated"
    if ctx.opt_class not in ADAPTIVE and len(rel) and np.isfinite(rel[-1]) and rel[-1] < 1e-3:
        return f"the output layer's gradient is only {fmt(rel[-1])} of its weights"
    return None


def lr_collapse(ctx) -> Finding | None:
    """The schedule drove the rate ≥ 100x below its peak in the first half of the run, and the loss
    stopped improving from there, short of trained (a scheduler stepped per batch, not per epoch)."""
    lr = ctx.t.lr()
    if not lr.size or ctx.n < 40 or ctx.loss_good or ctx.profile.diverged or not ctx.profile.finite:
        return None
    lr = M.as_float(lr[:, 0])
    if not np.isfinite(lr).any():
        return None
    peak_row = int(np.nanargmax(lr))
    peak = float(lr[peak_row])
    low = np.flatnonzero((np.arange(ctx.n) > peak_row) & (lr <= peak / 100))
    if not (peak > 0) or not len(low) or low[0] > ctx.n // 2:
        return None
    fell = int(low[0])
    first_drop = int(np.flatnonzero((np.arange(ctx.n) > peak_row) & (lr <= peak / 1.5))[0])
    after = ctx.loss[fell:]
    k = max(3, len(after) // 10)
    a0, a1 = float(nanmedian(after[:k])), float(nanmedian(after[-k:]))
    if not (np.isfinite(a0) and np.isfinite(a1)) or a1 < 0.95 * a0:
        return None  # still learning at the low rate
    base = ctx.baseline
    if np.isfinite(base) and base > 0 and a1 <= 0.5 * base:
        return None  # already trained well before the rate fell: a planned decay
    end_lr = float(lr[np.flatnonzero(np.isfinite(lr))[-1]])
    evidence = (f"the learning rate falls from {fmt(peak)} (step {ctx.step(peak_row)}) to {fmt(lr[fell])} by "
                f"step {ctx.step(fell)} — {fmt(peak / lr[fell])}x in {ctx.step(fell) - ctx.step(first_drop)} "
                "steps — "
                f"and ends at {fmt(end_lr)}; from step {ctx.step(fell)} the loss stays at {fmt(a1)} (it was "
                f"{fmt(a0)} when the rate fell); {ctx.loss_text()}")
    fix = ("step the scheduler once per epoch, not per batch (scheduler.step() outside the batch loop), or "
           "give step_size/T_max/milestones in batches; keep the rate near "
           f"{nice_lr(peak)} until the loss has stopped improving")
    return Finding(
        code="lr_too_low", kind="cause", severity="warning", confidence=0.75,
        steps=[ctx.step(first_drop), ctx.step(ctx.n - 1)], layer=None,
        title=f"Learning rate decays {fmt(peak / lr[fell])}x by step {ctx.step(fell)} (to {fmt(end_lr)} at "
              "the end): the loss stops improving there",
        evidence=evidence, fix=fix,
        marks={"lane": "lr", "events": [ctx.step(first_drop), ctx.step(fell)],
               "hlines": [{"lane": "lr", "y": peak, "label": "peak rate"}]},
    )


@detector(code="lr_too_low", kind="cause", requires=("steps/loss", "params/update_ratio"))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    collapsed = lr_collapse(ctx)
    if collapsed is not None:
        return collapsed
    med = ctx.update_layer_median
    if not med or ctx.loss_good or not ctx.loss_bad or ctx.profile.diverged:
        return None
    if ctx.profile.late_drop >= 0.1 or ctx.update_high >= 0.03:
        return None  # the loss is still moving, or updates were large at some point
    top_layer = max(med, key=lambda i: med[i] if np.isfinite(med[i]) else -1.0)
    top = med[top_layer]
    if not np.isfinite(top) or top <= 0:
        return None
    p = ctx.profile
    if top < 1e-4:
        severity = "error" if top < 1e-5 else "warning"
        conf = 0.6 + 0.15 * min(max(np.log10(1e-4 / top), 0.0), 2.0)
    elif top < 3e-4 and p.drop < 0.1 and p.late_drop < 0.05:
        severity, conf = "warning", 0.5  # small updates and a loss that has hardly moved at all
    else:
        return None
    other = gradient_problem(ctx)
    if other:
        severity, conf = ("info" if "~0" in other or "zero" in other else "warning"), conf * 0.5
    lr = ctx.lr_max
    typical = float(nanmedian(np.array(list(med.values()))))
    evidence = (f"median update/weight ratio at most {fmt(top)} ({ctx.label(top_layer)}) and typically "
                f"{fmt(typical)} across {len(med)} trained weight layers (healthy ≈ 1e-3): the weights "
                f"move {fmt(HEALTHY_UPDATE / max(top, 1e-30))}x slower than usual; {ctx.loss_text()}, "
                f"{fmt(100 * p.drop)} % removed")
    if ctx.opt_class:
        evidence += f"; {ctx.opt_class} at lr {fmt(lr)}"
    if other:
        evidence += f"; but {other}, which may be the real cause"
    if np.isfinite(lr) and lr > 0:
        fix = (f"raise the learning rate from {fmt(lr)} to ~{nice_lr(lr * HEALTHY_UPDATE / typical)} "
               f"(updates ~1e-3 of the weights); or use Adam at lr ~1e-3")
    else:
        fix = "raise the learning rate until updates are ~1e-3 of the weights"
    return Finding(
        code="lr_too_low", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(0, ctx.n - 1), layer=None,
        title=f"Learning rate too low: updates are {fmt(typical)} of the weights per step",
        evidence=evidence, fix=fix,
    )
