"""vanishing_gradients — gradients shrink towards zero on their way back to the input layers.

Looks at:   the relative gradient ‖g‖/‖w‖ of every weight layer in model order (median over
            the run), its slope through depth, the update ratios of the first layers, the
            loss curve, and competing explanations (dead ReLUs, saturated tanh/sigmoid
            units, identical units from a constant init, weights decayed to zero).
Fires when: at least 3 weight layers and the relative gradient falls ≥ 100x from the last
            layer to the first with a consistent trend through depth (Spearman ρ ≥ 0.7);
            error from 1000x (300x with ρ ≥ 0.9) when the loss is not improving. Info only when the loss falls
            well anyway; capped at warning when another cause above explains it.
Evidence:   the relative gradient of the output-side and input-side layers, the factor
            across depth, the first layer's update ratio, the loss curve.
Onset:      0 when the gradients vanish from the start; else the first step from which the per-step
            output/input ratio stays ≥ 100x.
Fix:        ReLU/GELU instead of sigmoid/tanh in hidden layers, Kaiming/Xavier init,
            normalisation layers (BatchNorm/LayerNorm) or residual connections, fewer layers.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt, rival_causes
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import depth_profile, nanmedian, quiet
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace


def alternatives(ctx) -> list[str]:
    why = []
    dead = [j for j, (_, late, _) in ctx.dead.items() if late >= 0.9]
    if dead:
        why.append(f"{ctx.mlabel(dead[0])} is dead")
    if ctx.saturated_modules:
        why.append(f"{ctx.mlabel(ctx.saturated_modules[0])} is saturated")
    if ctx.symmetric_layers:
        why.append(f"the units of {ctx.label(ctx.symmetric_layers[0])} are identical (constant init)")
    if ctx.weight_decay > 0 and ctx.weight_shrink <= 0.1:
        why.append(f"weight decay shrank the weights to {fmt(ctx.weight_shrink)} of their size")
    return why


def _onset(ctx, layers: list[int], span: float) -> int:
    """First row from which the per-row output/input ratio of ‖g‖/‖w‖ stays ≥ 100x (and ≥ 70 % of the
    run's figure, in log10): 0 when the gradients vanish from the start."""
    rel = ctx.rel_grad[:, layers]
    with np.errstate(all="ignore"):
        logs = np.log10(np.where(rel > 0, rel, np.nan))
    row_span = logs[:, -1] - logs[:, 0]
    measured = np.isfinite(row_span)
    found = mask_onset(measured & (row_span >= max(2.0, 0.7 * span)), measured)
    if found < 0:
        return 0
    row = int(ctx.sub[found])
    return 0 if from_start(row, ctx.n) else row


@detector(code="vanishing_gradients", kind="cause", requires=("params/g_norm", "params/w_norm"))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    layers = [i for i in ctx.weights if ctx.info[i]["requires_grad"]]
    if len(layers) < 3:
        return None
    rel = nanmedian(ctx.rel_grad[:, layers], axis=0)
    span, rho = depth_profile(rel)
    if not np.isfinite(span) or span < 2 or not (rho >= 0.7):
        return None
    if ctx.loss_good:
        severity = "info"
    elif ctx.loss_bad and (span >= 3 or (span >= 2.5 and rho >= 0.9)):
        severity = "error"
    else:
        severity = "warning"
    conf = 0.5 + 0.1 * min(span - 2, 2.0) + 0.2 * (rho - 0.7) / 0.3 + (0.1 if ctx.loss_bad else 0.0)
    why = alternatives(ctx)
    if why:
        conf *= 0.5
        severity = "info" if severity == "info" else "warning"
    ok = [k for k, v in enumerate(rel) if np.isfinite(v) and v > 0]
    first, last = layers[ok[0]], layers[ok[-1]]
    u_first = ctx.update_layer_median.get(first, float("nan"))
    evidence = (f"relative gradient ‖g‖/‖w‖ is {fmt(rel[ok[-1]])} in {ctx.label(last)} (output side) but "
                f"{fmt(rel[ok[0]])} in {ctx.label(first)} (input side): {fmt(10 ** span)}x smaller across "
                f"{len(layers)} weight layers, shrinking steadily with depth (Spearman ρ = {fmt(rho)})")
    if np.isfinite(u_first):
        evidence += f"; {ctx.label(first)} moves {fmt(u_first)} of itself per step"
    evidence += f"; {ctx.loss_text()}"
    evidence += rival_causes(why)
    acts = sorted({t for t in ctx.t.module_types if t in ("Sigmoid", "Tanh", "Softsign", "Hardtanh")})
    swap = f"replace {'/'.join(acts)} in hidden layers by ReLU/GELU, " if acts else ""
    fix = (f"{swap}use Kaiming (ReLU) or Xavier (tanh) init, add BatchNorm/LayerNorm or residual "
           f"connections, or use fewer layers ({len(layers)} weight layers now)")
    return Finding(
        code="vanishing_gradients", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(_onset(ctx, layers, span), ctx.n - 1),
        layer=ctx.info[first]["module"] or ctx.name(first),
        marks={"layers": [ctx.info[first]["module"], ctx.info[last]["module"]]},
        title=f"Vanishing gradients: {fmt(10 ** span)}x smaller at the input layer than at the output",
        evidence=evidence, fix=fix,
    )
