"""saturated_activations — tanh/sigmoid units pinned at their bounds, where their gradient is ~0.

Looks at:   per hidden bounded module (Tanh, Sigmoid, Hardtanh, …; the model's final output
            activation is left to the output detectors) the fraction of outputs within 1 %
            of the bounds (``a_sat_frac``) at the start and over the second half, the scale
            of the module feeding it, and competing causes (oversized initial weights,
            unscaled inputs).
Fires when: ≥ 50 % of a module's outputs sit at the bounds (median over the second half);
            error from 80 % while the loss does not learn well. Info below 80 % when the
            loss falls well. Capped at warning when large_init or unscaled inputs explain it.
Evidence:   saturated fraction at the start and late, the pre-activation std, other layers.
Onset:      0 when saturated at the start; else the first step from which the module stays near its late
            saturated fraction.
Fix:        bring pre-activations to unit scale: normalise inputs, Xavier init, BatchNorm/
            LayerNorm before the nonlinearity, lower learning rate; or ReLU/GELU.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt, rival_causes
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import nanmedian, quiet
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace


def alternatives(ctx, j: int) -> list[str]:
    why = []
    modules = ctx.t.module_names
    before = [i for i in ctx.large_init_layers if ctx.info[i]["module"] in modules[:j]]
    if before:
        i = before[0]
        why.append(f"{ctx.label(i)} starts at {fmt(ctx.init_scale[i])}/sqrt(fan_in) (large init)")
    if ctx.t.has("inputs/std"):
        x = nanmedian(ctx.t.batch("inputs", "std")[: min(ctx.n, 2000)])
        first_bounded = min(ctx.saturation) if ctx.saturation else -1
        if np.isfinite(x) and x >= 10 and j == first_bounded:
            why.append(f"the inputs have std {fmt(x)} (not normalised)")
    return why


def _onset(ctx, j: int, s0: float, s1: float) -> int:
    """First row from which the module stays near its late saturated level (0 when from the start)."""
    if s0 >= 0.5:
        return 0
    per_row = ctx.module_stat("a_sat_frac", col=j)
    row = mask_onset(per_row >= 0.8 * s1, np.isfinite(per_row))
    return 0 if row < 0 or from_start(row, ctx.n) else row


@detector(code="saturated_activations", kind="cause", requires=("modules/a_sat_frac",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    sat = {j: v for j, v in ctx.saturation.items() if np.isfinite(v[1]) and v[1] >= 0.5}
    if not sat:
        return None
    order = sorted(sat, key=lambda j: -sat[j][1])
    j = order[0]
    s0, s1 = sat[j]
    names = trace.module_names
    if ctx.loss_good:
        severity = "warning" if s1 >= 0.8 else "info"
    else:
        severity = "error" if s1 >= 0.8 else "warning"
    conf = 0.5 + 0.4 * min((s1 - 0.5) / 0.4, 1.0) + (0.05 if ctx.loss_bad else 0.0)
    why = alternatives(ctx, j)
    if why:
        conf *= 0.6
        severity = "info" if severity == "info" else "warning"
    half = ctx.n // 2
    onset = _onset(ctx, j, s0, s1)
    evidence = (f"{fmt(100 * s1)} % of {ctx.mlabel(j)} outputs sit within 1 % of their bounds "
                f"(median over steps {ctx.step(half)}-{ctx.step(ctx.n - 1)}; {fmt(100 * s0)} % at the "
                "start); "
                "the derivative there is ~0, so almost no gradient passes")
    if j > 0:
        pre = nanmedian(ctx.module_stat("a_std", ctx.sub[ctx.sub >= half], col=j - 1))
        if np.isfinite(pre):
            evidence += (f"; its input {ctx.mlabel(j - 1)} has std {fmt(pre)} (tanh/sigmoid saturate "
                         "beyond ~2-3)")
    others = [f"{ctx.mlabel(k)} {fmt(100 * sat[k][1])} %" for k in order[1:4]]
    if others:
        evidence += "; also saturated: " + ", ".join(others)
    evidence += f"; {ctx.loss_text()}"
    evidence += rival_causes(why)
    return Finding(
        code="saturated_activations", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(onset, ctx.n - 1), layer=names[j], marks={"layers": [names[k] for k in order[:4]]},
        title=f"Saturated activations: {fmt(100 * s1)} % of {ctx.mlabel(j)} pinned at its bounds",
        evidence=evidence,
        fix=(f"bring the input of {ctx.mlabel(j)} to unit scale: normalise the inputs, use Xavier init "
             "(nn.init.xavier_uniform_), add BatchNorm/LayerNorm before it, lower the learning rate; "
             "or use ReLU/GELU in hidden layers"),
    )
