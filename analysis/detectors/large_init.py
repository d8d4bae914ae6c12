"""large_init — initial weights far above fan-in scaling, so pre-activations blow up from step 0.

Looks at:   every weight matrix's std at the first recorded step in units of 1/sqrt(fan_in)
            (PyTorch's default init gives ≈0.58, Kaiming ≈1.41; recurrent layers use their
            hidden size), and what that does at step 0: tanh/sigmoid units saturated, an
            initial loss far above what a constant prediction scores, gradients as large
            as the weights, activations growing through depth, non-finite values early.
Fires when: some layer starts at ≥ 4x 1/sqrt(fan_in) (≈7x the default) and at least one of
            those consequences is visible: error while the loss does not learn well or
            with two consequences, else warning; info without a visible consequence.
Evidence:   the scale of each oversized layer, and the consequences with their numbers.
Fix:        drop the custom init (or use kaiming_/xavier_ init: std ≈ sqrt(2/fan_in), quoted
            per layer), or scale the weights down by the quoted factor.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.detectors._optim import LARGE_INIT, clamp01, context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import first_true, quiet
from analysis.trace import Trace


def consequences(ctx) -> list[str]:
    out = []
    sat = {j: s0 for j, (s0, _) in ctx.saturation.items() if s0 >= 0.5}
    if sat:
        j = max(sat, key=sat.get)
        name, typ = ctx.t.module_names[j], ctx.t.module_types[j]
        out.append(f"{fmt(100 * sat[j])} % of {name} ({typ}) outputs sit at their bounds from the first step")
    p = ctx.profile
    if np.isfinite(ctx.baseline) and ctx.baseline > 0 and p.start >= 3 * ctx.baseline:
        out.append(f"the initial loss {fmt(p.start)} is {fmt(p.start / ctx.baseline)}x what a constant "
                   f"prediction scores ({fmt(ctx.baseline)}): the outputs start huge")
    growth, first, last = ctx.act_growth
    if growth >= 1:
        out.append(f"activation std grows {fmt(10 ** growth)}x from {ctx.mlabel(first)} to "
                   f"{ctx.mlabel(last)} at step 0")
    bad = first_true(~np.isfinite(ctx.loss))
    if 0 <= bad < max(ctx.early.stop, 3):
        out.append(f"the loss is non-finite from step {ctx.step(bad)}")
    return out


@detector(code="large_init", kind="cause", requires=("params/w_std",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    big = ctx.large_init_layers
    if not big:
        return None
    scale = ctx.init_scale
    worst = max(big, key=lambda i: scale[i])
    q = scale[worst]
    seen = consequences(ctx)
    if not seen:
        severity = "info"
    else:
        severity = "warning" if ctx.loss_good and len(seen) < 2 else "error"
    conf = 0.55 + 0.1 * min(math.log2(q / LARGE_INIT), 2.0) + 0.1 * min(len(seen), 3)
    if severity == "info":
        conf = min(conf, 0.5)
    layers = ", ".join(f"{ctx.label(i)} std {fmt(scale[i] / math.sqrt(ctx.fan(i)))} = {fmt(scale[i])}"
                       f"/sqrt(fan_in {ctx.fan(i)})" for i in sorted(big, key=lambda i: -scale[i])[:3])
    evidence = (f"{len(big)} of {len(ctx.weights)} weight layers start far above fan-in scale: {layers} "
                f"(PyTorch's default ≈ 0.58/sqrt(fan_in), Kaiming ≈ 1.41/sqrt(fan_in))")
    evidence += ("; " + "; ".join(seen)) if seen else "; no visible harm yet"
    target = math.sqrt(2.0 / ctx.fan(worst))
    fix = (f"remove the custom initialisation or use nn.init.kaiming_normal_ / xavier_uniform_: for "
           f"{ctx.label(worst)} std ≈ {fmt(target)} (now {fmt(q / math.sqrt(ctx.fan(worst)))}, "
           f"{fmt(q / math.sqrt(2))}x too large)")
    return Finding(
        code="large_init", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(0, ctx.early.stop - 1), layer=ctx.info[worst]["module"] or ctx.name(worst),
        title=f"Initial weights too large: {ctx.label(worst)} starts at {fmt(q)}/sqrt(fan_in)",
        evidence=evidence, fix=fix,
    )
