"""lr_too_high — optimiser steps overshoot: each update moves the weights by a large part of themselves.

Looks at:   the update/weight ratio ‖Δw‖/‖w‖ of every trained weight matrix per step (healthy
            ≈ 1e-3), the loss curve (divergence, non-finite values, no progress), and
            competing explanations (gradient accumulation, abnormal gradients or weights
            from step 0, weight decay dominating the step).
Fires when: updates reach ≥ 0.03 of the weights (median across layers over the first
            3 measured steps, the 95th percentile over the first tenth of the run, or the
            90th over all of it) and the loss diverges, swings or goes non-finite; or
            updates reach ≥ 0.2 and the loss does not improve (ends near a constant
            predictor's level). Error from 0.1 with a diverging loss, 0.5 with a stuck
            loss (0.2 when ReLU units alive at the start died). Capped at warning when the
            outputs had exploded at step 0, the initial weights were too large, zero_grad
            is missing, weight decay explains the step size, or units were saturated, dead
            or identical from the first step.
Evidence:   the update ratio reached, in how many layers, the worst layer, the loss curve.
Onset:      0 when updates overshoot from the first steps; for a climbing schedule, the step where the loss
            turns while the rate climbs; else where the update ratio departs 10x.
Fix:        lower the learning rate by the factor that brings the update ratio to
            ~1e-3-1e-2 (quoted from the run), add warm-up or gradient clipping.
"""

from __future__ import annotations

import numpy as np

from analysis import metrics as M
from analysis.detectors._optim import HEALTHY_UPDATE, clamp01, context, fmt, nice_lr, rival_causes
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import nanmedian, nanpercentile, quiet
from analysis.onset import from_start, level_shift, mask_onset, rise_above_best
from analysis.trace import Trace


def alternatives(ctx) -> list[str]:
    """Other root causes that explain large updates and a bad loss, as short phrases."""
    why = []
    if ctx.carry_high:
        why.append("gradients accumulate across steps (missing zero_grad)")
    if ctx.init_blowup >= 10:
        why.append(f"the outputs had already exploded at step 0 (loss {fmt(ctx.init_blowup)}x a constant "
                   "prediction's)")
    if ctx.large_init_layers:
        why.append("the initial weights are far above fan-in scale")
    decay = ctx.weight_decay * ctx.lr_max
    if decay > 0 and decay >= 0.3 * ctx.update_high:
        why.append(f"weight decay x lr = {fmt(decay)} per step sets the update size")
    sat0 = [j for j, (s0, _) in ctx.saturation.items() if s0 >= 0.5]
    if sat0:
        why.append(f"{ctx.mlabel(sat0[0])} is saturated from the first step")
    dead0 = [j for j, (s0, late, _) in ctx.dead.items() if s0 >= 0.5 and late >= 0.5]
    if dead0:
        why.append(f"{ctx.mlabel(dead0[0])} is dead from the first step")
    if ctx.symmetric_layers:
        why.append(f"the units of {ctx.label(ctx.symmetric_layers[0])} start identical")
    return why


def _loss_turn(ctx) -> int:
    """Row where the loss leaves its best level for good (1.3x, or non-finite), or where every
    gradient becomes exactly 0 (the net died); -1 if neither."""
    turn = rise_above_best(ctx.loss, 1.3)
    g = ctx.grad_full
    zero = mask_onset(g == 0, np.isfinite(g), min_frac=0.95)
    if zero >= 0 and mask_onset(g[:zero] == 0, np.isfinite(g[:zero])) < 0:
        turn = zero if turn < 0 else min(turn, zero)
    return turn


def _onset(ctx, u: float) -> int:
    """0 when the steps overshoot from the start (early updates already ≥ 0.03 of the weights);
    else the row where the update ratio departs 10x from its earlier level, or the loss turns."""
    early = ctx.update_row[ctx.sub_early] if len(ctx.sub_early) else ctx.update_row[:3]
    if np.isfinite(early).any() and float(np.nanmax(early)) >= min(0.03, u / 3):
        return 0
    found = level_shift(ctx.update_row, 10.0)
    row = int(ctx.sub[found]) if found >= 0 else _loss_turn(ctx)
    return 0 if row < 0 or from_start(row, ctx.n) else row


def lr_rise(ctx) -> Finding | None:
    """The learning rate climbed ≥ 3x above the rate the run trained well at, and the loss turned then."""
    lr = ctx.t.lr()
    if not lr.size or ctx.n < 50:
        return None
    lr = M.as_float(lr[:, 0])
    turn = _loss_turn(ctx)
    if turn < max(10, ctx.n // 20):
        return None
    base = float(nanmedian(lr[:turn]))
    at = float(np.nanmax(lr[max(turn - 3, 0): turn + 1]))
    # the loss turned while the rate was climbing (≥ 1.2x) to ≥ 3x the rate it had trained well at
    if not (base > 0) or not (at >= 1.2 * base) or not (float(np.nanmax(lr[turn:])) >= 3 * base):
        return None
    # where the climb began: the last row before the turn still at the base rate
    low = np.flatnonzero(lr[:turn] <= 1.05 * base)
    rise = int(low[-1]) + 1 if len(low) else 0
    top_row = int(np.nanargmax(lr))
    p = ctx.profile
    loss_before = float(nanmedian(ctx.loss[max(rise - max(ctx.n // 50, 5), 0): rise + 1]))
    after = ctx.loss[turn:]
    died = not np.isfinite(ctx.loss[turn:]).any()
    end = "went non-finite" if died or not p.finite else f"stayed at {fmt(float(nanmedian(after)))}"
    g = ctx.grad_full
    zero = ctx.n - 1 - int(np.argmax((g[::-1] != 0) & np.isfinite(g[::-1]))) if (g == 0).any() else -1
    evidence = (f"the learning rate climbs {fmt(float(np.nanmax(lr)) / base)}x, from {fmt(base)} (step "
                f"{ctx.step(rise - 1 if rise else 0)}) to {fmt(float(np.nanmax(lr)))} "
                f"(step {ctx.step(top_row)}); "
                f"the loss, {fmt(loss_before)} when the climb began, turns up at step {ctx.step(turn)} when "
                f"the lr is {fmt(at)} ({fmt(at / base)}x the rate it trained well at) and then {end}")
    if 0 <= zero < ctx.n - 1:
        evidence += f"; every gradient is exactly 0 from step {ctx.step(zero + 1)} (the units died)"
    severity = "error" if ctx.loss_bad or died or not p.finite else "warning"
    bear = float(nanmedian(lr[max(turn - max(ctx.n // 50, 5), rise): max(turn - 1, rise + 1)]))
    fix = (f"keep the learning rate at or below ~{nice_lr(min(bear, at / 2))} (the rate the loss still "
           f"bore before step {ctx.step(turn)}): check the schedule (a warm-up to the wrong peak, a "
           "scheduler stepped per batch instead of per epoch, a cyclic/one-cycle max set too high); "
           "gradient clipping limits the damage of single large steps")
    return Finding(
        code="lr_too_high", kind="cause", severity=severity, confidence=0.85 if severity == "error" else 0.6,
        steps=[ctx.step(turn), ctx.step(ctx.n - 1)], layer=None,
        title=f"Learning rate too high from step {ctx.step(turn)}: the schedule climbs "
              f"{fmt(float(np.nanmax(lr)) / base)}x and the loss gives way at lr {fmt(at)}",
        evidence=evidence, fix=fix,
        marks={"lane": "lr", "events": [ctx.step(rise), ctx.step(turn)],
               "hlines": [{"lane": "lr", "y": at, "label": f"lr {fmt(at)} at the turn"},
                          {"lane": "lr", "y": base, "label": f"trained well at {fmt(base)}"}]},
    )


@detector(code="lr_too_high", kind="cause", requires=("steps/loss", "params/update_ratio"))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    ramp = lr_rise(ctx)
    if ramp is not None:
        return ramp
    u = ctx.update_high
    if not ctx.moving or not np.isfinite(u) or ctx.loss_good:
        return None
    p = ctx.profile
    diverging = p.diverged or not p.finite
    if diverging and u >= 0.03:
        severity = "error" if u >= 0.1 else "warning"
    elif ctx.loss_bad and u >= 0.2:
        killed = [j for j, (s0, late, _) in ctx.dead.items() if late >= 0.5 and s0 < 0.25]
        severity = "error" if u >= 0.5 or killed else "warning"
    else:
        return None
    strength = np.log10(u / HEALTHY_UPDATE)  # 1.5 at 0.03, 2 at 0.1, 3 at 1
    conf = 0.55 + 0.15 * min(max(strength - 1.5, 0.0), 2.0) + (0.1 if diverging else 0.0)
    why = alternatives(ctx)
    if why:
        conf *= 0.55
        severity = "warning"
    # Which layers overshoot, measured over the early rows.
    early = ctx.update[ctx.sub_early] if len(ctx.sub_early) else ctx.update
    per_layer = {i: float(nanpercentile(early[:, i], 95)) for i in ctx.moving}
    high = [i for i, v in per_layer.items() if v >= 0.01]
    worst = max(per_layer, key=lambda i: per_layer[i] if np.isfinite(per_layer[i]) else -1)
    lr0 = ctx.lr0
    lo, hi = lr0 * 1e-3 / u, lr0 * 1e-2 / u
    evidence = (f"update/weight ratio reached {fmt(u)} (median over {len(ctx.moving)} trained weight layers; "
                f"healthy ≈ 1e-3); {len(high)}/{len(ctx.moving)} layers above 0.01 early on, worst "
                f"{ctx.label(worst)} at {fmt(per_layer[worst])}; {ctx.loss_text()}")
    if ctx.opt_class:
        evidence += f"; {ctx.opt_class} at lr {fmt(lr0)}"
    evidence += rival_causes(why)
    if np.isfinite(lr0) and lr0 > 0:
        fix = (f"lower the learning rate from {fmt(lr0)} to ~{nice_lr(lo)}-{nice_lr(hi)} (update ratio "
               "~1e-3-1e-2), or add a warm-up; clip gradients (clip_grad_norm_) to stop single large steps")
    else:
        fix = "lower the learning rate about 10-100x, or add warm-up and gradient clipping"
    end = p.first_nonfinite if not p.finite else (p.diverge_row if p.diverged else 0)
    start = _onset(ctx, u)
    return Finding(
        code="lr_too_high", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(start, max(end, start) if diverging and not p.swings else ctx.n - 1),
        marks={"layers": [ctx.info[i]["module"] for i in high[:8]]},
        layer=ctx.info[worst]["module"] or ctx.name(worst),
        title=f"Learning rate too high: updates move weights by {fmt(100 * u)} % per step",
        evidence=evidence, fix=fix,
    )
