"""missing_zero_grad — gradients pile up across steps because they are never zeroed.

Looks at:   ``grad_carry`` per step (the part of a probe parameter's gradient not produced by
            this step's backward passes: ≈0 when gradients are zeroed, ≈1 when they pile up)
            and the growth of the global gradient norm with the step count (∝ step when
            stale gradients keep adding up). Without ``grad_carry``, only the growth.
Fires when: grad_carry ≥ 0.5 on ≥ 60 % of the steps from its onset (the row from which it
            stays raised, ≥ 0.2 on ≥ 80 % of the measured rows to the end: step 1, or
            later when a rewritten loop drops zero_grad mid-run) and never reset (error),
            or reset only every > 16 steps (warning: zero_grad once per epoch?),
            or ≥ 0.5 on ≥ 30 % of the steps (warning). Resets every ≤ 16 steps are
            deliberate gradient accumulation and stay quiet. Without grad_carry: the gradient norm
            grows as a power ≥ 0.6 of the step count, steadily (Spearman ≥ 0.9) and ≥ 10x,
            while the loss does not learn well (warning).
Evidence:   the median grad_carry and the share of steps it is high, the gradient norm
            growth and its power law, the loss curve.
Fix:        call optimizer.zero_grad() once per step before loss.backward() (for deliberate
            accumulation: zero every k micro-batches and divide the loss by k).
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt, reset_period
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import as_float, quiet, spearman, theil_sen
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace

FIX = ("call optimizer.zero_grad() (or model.zero_grad(set_to_none=True)) once per step before "
       "loss.backward(); for deliberate gradient accumulation, zero after every k micro-batches and divide "
       "the loss by k")


def norm_growth(ctx) -> tuple[float, float, float]:
    """(power of step, Spearman with step, log10 growth last/first) of the global gradient norm."""
    g = ctx.grad_global
    steps = ctx.t.steps[ctx.sub].astype(float)
    ok = np.isfinite(g) & (g > 0)
    if ok.sum() < 8:
        return float("nan"), float("nan"), float("nan")
    g, s = g[ok], steps[ok] - steps[ok][0] + 1
    idx = np.linspace(0, len(g) - 1, min(len(g), 200)).astype(int)
    power = theil_sen(np.log10(s[idx]), np.log10(g[idx]))
    k = max(1, len(g) // 10)
    return power, spearman(s, g), float(np.log10(np.median(g[-k:]) / np.median(g[:k])))


def carry_tail(trace: Trace, n: int) -> tuple[int, float, float, float]:
    """``(onset row, median, share ≥ 0.5, reset period)`` of grad_carry from the row where it
    rises for good (≥ 0.2 on ≥ 80 % of the measured rows to the end); onset -1 if it never does
    (or for fewer than 5 measured rows)."""
    c = as_float(trace.grad_carry())
    ok = np.isfinite(c)
    row = mask_onset(c >= 0.2, ok, min_frac=0.8)
    if row < 0:
        return -1, float("nan"), float("nan"), float("nan")
    row = 1 if from_start(row, n) else row
    tail = c[row:][ok[row:]]
    if len(tail) < 5:
        return -1, float("nan"), float("nan"), float("nan")
    return row, float(np.median(tail)), float(np.mean(tail >= 0.5)), reset_period(c[row:])


@detector(code="missing_zero_grad", kind="cause", requires=("params/g_norm",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    if ctx.n < 3:
        return None
    med, frac = ctx.carry
    period = ctx.carry_period
    start = 1 if ctx.n > 1 else 0
    onset, t_med, t_frac, t_period = carry_tail(trace, ctx.n)
    if onset > 1 and t_med >= 0.5 and t_frac >= 0.6:  # zero_grad dropped mid-run
        start, med, frac, period = onset, t_med, t_frac, t_period
    power, rho, growth = norm_growth(ctx)
    growth_text = ""
    if np.isfinite(growth):
        growth_text = (f"; the global gradient norm grew {fmt(10 ** growth)}x from the first to the last "
                       f"tenth of the run (~ step^{fmt(power)})")
    if np.isfinite(med):
        if period <= 16:
            return None  # zeroed every few micro-batches: deliberate gradient accumulation
        if med >= 0.5 and frac >= 0.6:
            severity = "warning" if np.isfinite(period) else "error"
            conf = 0.85 + 0.1 * min((frac - 0.6) / 0.4, 1.0) - (0.2 if np.isfinite(period) else 0.0)
        elif frac >= 0.3:
            severity, conf = "warning", 0.5 + 0.3 * frac
        else:
            return None
        since = ("the first (≈0 when gradients are zeroed every step)" if start <= 1 else
                 f"step {ctx.step(start)} (≈0 before it, as when gradients are zeroed every step)")
        evidence = (f"grad_carry is {fmt(med)} (median) and ≥ 0.5 on {fmt(100 * frac)} % of the steps after "
                    f"{since}: each step's gradient still holds "
                    f"the previous steps'{growth_text}; {ctx.loss_text()}")
        if np.isfinite(period):
            evidence += (f"; gradients are reset only every ~{fmt(period)} steps (zero_grad outside the "
                         "batch loop?)")
    else:
        if not (np.isfinite(power) and power >= 0.6 and rho >= 0.9 and growth >= 1) or ctx.loss_good:
            return None
        severity, conf = "warning", 0.45
        evidence = (f"grad_carry was not recorded{growth_text}, steadily (Spearman {fmt(rho)} with the "
                    f"step): gradients that are never zeroed grow like this; {ctx.loss_text()}")
    return Finding(
        code="missing_zero_grad", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(start, ctx.n - 1), layer=None,
        title="Gradients accumulate across steps: zero_grad() is missing",
        evidence=evidence, fix=FIX,
    )
