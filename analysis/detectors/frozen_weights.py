"""frozen_weights — parameters that never change: not in the optimiser, requires_grad off, no step.

Looks at:   per parameter whether its weight statistics (norm, mean) stayed exactly constant
            over the run with no measured update, why (``requires_grad``, membership of an
            optimiser group, gradients present but never applied, learning rate 0), the
            share of the model's parameters concerned, and whether the loss learned.
Fires when: some parameters never changed. Error when (nearly) all of them are frozen, or
            when gradients are computed but never applied to half the model or more and the
            loss does not learn; warning when the loss does not learn otherwise. Info when the
            rest of the model trains and the loss falls well (e.g. fine-tuning a head on a
            deliberately frozen backbone); warning when frozen layers sit between trained ones
            (no backbone: nobody freezes the middle of a network on purpose).
Evidence:   the frozen parameters and their share, the reason, what did train, the loss.
Fix:        give the optimiser every parameter that should learn (model.parameters()), call
            optimizer.step() after backward(), unfreeze (requires_grad_(True)), lr > 0.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import nanmedian, quiet
from analysis.trace import Trace

REASONS = {
    "no_grad": "requires_grad=False",
    "not_in_opt": "requires_grad=True but not in any optimizer param group: gradients are computed, "
                  "then thrown away",
    "no_step": "in the optimizer with non-zero gradients, yet never updated (optimizer.step() not called, "
               "or lr 0)",
    "unused": "in the optimizer but never received a gradient (not used in the forward pass, or detached)",
}
FIXES = {
    "no_grad": "unfreeze them with p.requires_grad_(True) if they should learn",
    "not_in_opt": "build the optimizer from model.parameters() once the model is complete (it holds only "
                  "{k} of {n} tensors: a layer added after the optimizer was created is never updated, and "
                  "opt.zero_grad() never clears its gradient)",
    "no_step": "call optimizer.step() after loss.backward() every step, with lr > 0",
    "unused": "check the forward pass uses these modules and does not .detach() their outputs",
}


def frozen_params(ctx) -> dict[int, str]:
    """Parameters that never changed, with the reason (a REASONS key)."""
    w, mean = ctx.w_norm, ctx.stat("w_mean", ctx.sub)
    u, g = ctx.update, ctx.g_norm
    lr = ctx.t.lr()
    lr_zero = lr.size > 0 and np.all(np.nan_to_num(lr, nan=1.0) == 0)
    out = {}
    for i, p in enumerate(ctx.info):
        col = w[:, i]
        if not np.isfinite(col).all() or not np.isfinite(mean[:, i]).all():
            continue
        ref = float(np.median(np.abs(col)))
        rms = ref / np.sqrt(max(p["numel"], 1))
        if np.ptp(col) > 1e-6 * ref or np.ptp(mean[:, i]) > 1e-6 * max(rms, 1e-30):
            continue
        if np.nanmax(np.nan_to_num(u[:, i], nan=0.0)) > 0:
            continue
        grads = g[:, i]
        # A gradient below float32 resolution of the weight cannot move it: that is a
        # vanishing gradient, not a frozen parameter.
        has_grad = bool(np.any(np.isfinite(grads) & (grads > 1e-6 * ref)))
        if not p["requires_grad"]:
            out[i] = "no_grad"
        elif not p["in_optimizer"] and ctx.has_optimizer:
            out[i] = "not_in_opt"
        elif has_grad or lr_zero:
            out[i] = "no_step"
        elif not np.isfinite(grads).any():
            out[i] = "unused"
    return out


@detector(code="frozen_weights", kind="cause", requires=("params/w_norm",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    if ctx.n < 3 or not ctx.info:
        return None
    frozen = frozen_params(ctx)
    if not frozen:
        return None
    numel = np.array([max(p["numel"], 0) for p in ctx.info], float)
    share = float(numel[list(frozen)].sum() / max(numel.sum(), 1))
    reasons = sorted(set(frozen.values()), key=lambda r: -sum(numel[i] for i, v in frozen.items() if v == r))
    wasted = sum(numel[i] for i, r in frozen.items() if r in ("not_in_opt", "no_step")) / max(numel.sum(), 1)
    if share >= 0.99:
        severity, conf = "error", 0.95
    elif ctx.loss_good:
        severity, conf = "info", 0.4
    elif wasted >= 0.5 and ctx.loss_bad:
        severity, conf = "error", 0.75 + 0.15 * min((wasted - 0.5) / 0.4, 1.0)
    elif ctx.loss_bad:
        severity, conf = "warning", 0.55 + 0.2 * share
    else:
        severity, conf = "info", 0.35
    thrown = [i for i, r in frozen.items() if r == "not_in_opt" and ctx.info[i]["requires_grad"]]
    head = bool(thrown) and bool(ctx.weights) and ctx.weights[-1] in thrown
    if severity == "info" and (head or (thrown and not ctx.loss_good)):
        # requires_grad on but outside the optimiser: gradients computed every step and thrown
        # away; nobody freezes the output layer on purpose (a head built after the optimiser)
        severity, conf = ("error", 0.8) if head and not ctx.loss_good else ("warning", 0.65)
    trained_idx = [i for i in range(len(ctx.info)) if i not in frozen and numel[i] > 0]
    backbone = not trained_idx or max(frozen) < min(trained_idx)
    if severity == "info" and not backbone:
        # a frozen stretch between trained layers is no frozen backbone: nobody means that
        severity, conf = "warning", 0.6
    names = [ctx.label(i) for i in sorted(frozen)]
    trained = [ctx.name(i) for i in range(len(ctx.info)) if i not in frozen]
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    n_frozen, n_all = int(numel[list(frozen)].sum()), int(numel.sum())
    why = "; ".join(f"{REASONS[r]} ({sum(1 for v in frozen.values() if v == r)} tensors)" for r in reasons)
    evidence = (f"{n_frozen:,} of {n_all:,} parameters ({fmt(100 * share)} %) never changed over steps "
                f"{ctx.step(0)}-{ctx.step(ctx.n - 1)}: {listed}; {why}")
    if "no_step" in reasons:
        g = nanmedian(ctx.g_norm[:, [i for i, r in frozen.items() if r == "no_step"]])
        if np.isfinite(g):
            evidence += f"; their gradient norm is ~{fmt(g)}"
    more = "…" if len(trained) > 4 else ""
    evidence += f"; trained: {', '.join(trained[:4]) + more if trained else 'nothing'}"
    evidence += f"; {ctx.loss_text()}"
    if severity == "info" and share < 0.99 and not thrown:
        evidence += "; the rest of the model trains, so this may be deliberate (a frozen backbone)"
    k = sum(1 for i in range(len(ctx.info)) if ctx.info[i]["in_optimizer"])
    fix = "; ".join(FIXES[r].format(k=k, n=len(ctx.info)) for r in reasons)
    first = min(frozen)
    return Finding(
        code="frozen_weights", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(0, ctx.n - 1), layer=ctx.info[first]["module"] or ctx.name(first),
        title=f"Frozen weights: {fmt(100 * share)} % of the parameters never change",
        evidence=evidence, fix=fix,
    )
