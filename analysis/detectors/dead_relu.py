"""dead_relu — ReLU units that output zero for every input, so they pass no gradient and never recover.

Looks at:   per ReLU module (hidden ones; an output ReLU is bounded_output's business) the
            units that fired for no input in any liveness window of the second half of the
            run (``units/alive``), else the median per-batch dead fraction
            (``a_dead_frac``); the dead fraction at step 0; the pre-activation statistics
            of the module feeding it; competing causes (huge early updates, decayed or
            identical weights).
Fires when: ≥ 50 % of a layer's units are persistently dead (healthy ReLU nets have a few);
            error from 90 %, or from 70 % when dead from step 0 and the loss does not learn.
            Info when the loss falls well anyway (warning if ≥ 90 %). Capped at warning when
            the units died after huge updates (learning rate), when weight decay shrank the
            weights to nothing, when the units are identical, or the inputs are constant or
            unscaled.
Evidence:   dead units / total, the window of steps, whether they were dead from step 0,
            the pre-activation mean and std, other affected layers.
Onset:      step 0 when dead from the initialisation; else the first step from which the
            per-batch dead fraction stays at half its late level.
Fix:        dead from the start with unscaled inputs: standardise them; dead from the start:
            fix the bias/weight init (biases 0, Kaiming init); died
            during training: lower the learning rate; either way LeakyReLU/GELU or
            BatchNorm before the ReLU keep units alive.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt, rival_causes
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import first_true, nanmedian, quiet
from analysis.onset import from_start, mask_onset
from analysis.trace import Trace


def alternatives(ctx, died_later: bool) -> list[str]:
    why = []
    if died_later and ctx.update_high >= 0.1:
        why.append(f"they died after updates of {fmt(ctx.update_high)} of the weights per step "
                   "(learning rate)")
    if ctx.weight_decay > 0 and ctx.weight_shrink <= 0.1:
        why.append(f"weight decay shrank the weights to {fmt(ctx.weight_shrink)} of their size")
    if ctx.symmetric_layers:
        why.append(f"the units of {ctx.label(ctx.symmetric_layers[0])} are identical (constant init)")
    if not died_later and ctx.input_scale >= 10:
        why.append(f"the inputs are not normalised (largest feature size {fmt(ctx.input_scale)}, unit ≈ 1)")
    if ctx.t.has("inputs/std"):
        x = ctx.t.batch("inputs", "std")
        if len(x) and np.nanmax(np.nan_to_num(x, nan=0.0)) == 0:
            why.append("the inputs are constant")
    return why


def _onset(ctx, j: int, frac: float, died_later: bool) -> int:
    """0 when dead from the initialisation; else the first row from which the module's per-batch
    dead fraction stays at half its late level or more (measured rows only)."""
    if not died_later:
        return 0
    per_row = ctx.module_stat("a_dead_frac", col=j)
    measured = np.isfinite(per_row)
    row = mask_onset(per_row >= 0.5 * frac, measured, min_frac=0.9)
    if row < 0:
        row = first_true(measured & (per_row >= 0.5 * frac))
    return 0 if row < 0 or from_start(row, ctx.n) else row


@detector(code="dead_relu", kind="cause", requires=("modules/a_dead_frac",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    dead = {j: v for j, v in ctx.dead.items() if np.isfinite(v[1])}
    bad = sorted((j for j, v in dead.items() if v[1] >= 0.5), key=lambda j: -dead[j][1])
    if not bad:
        return None
    j = bad[0]
    start, frac, source = dead[j]
    names = trace.module_names
    died_later = not (start >= 0.5 * frac)
    severity = "error" if frac >= 0.9 or (frac >= 0.7 and ctx.loss_bad and not died_later) else "warning"
    if ctx.loss_good:
        severity = "warning" if frac >= 0.9 else "info"
    conf = 0.5 + 0.45 * min((frac - 0.5) / 0.5, 1.0) + 0.03 * min(len(bad) - 1, 2)
    why = alternatives(ctx, died_later)
    if why:
        conf *= 0.55
        severity = "info" if severity == "info" else "warning"
    alive = trace.unit_alive(j)
    units = alive.shape[1] if alive is not None and alive.ndim == 2 else None
    pct = f"{fmt(100 * frac)} %"
    count = f"{round(frac * units)}/{units} units ({pct})" if units else f"{pct} of units"
    onset = _onset(ctx, j, frac, died_later)
    window = "in every liveness window of the second half" if source == "windows" else \
        "in every batch (median over the second half)"
    evidence = f"{count} of {ctx.mlabel(j)} output zero for every input {window}"
    if died_later:
        evidence += f"; only {fmt(100 * start)} % at step {ctx.step(0)}: they died during training"
    else:
        evidence += f"; already {fmt(100 * start)} % dead at step {ctx.step(0)} (initialisation)"
    if j > 0:
        head = slice(0, max(1, min(ctx.n, 3)))
        mean = nanmedian(ctx.module_stat("a_mean", head, col=j - 1))
        std = nanmedian(ctx.module_stat("a_std", head, col=j - 1))
        if np.isfinite(mean) and np.isfinite(std):
            evidence += (f"; its input {ctx.mlabel(j - 1)} has mean {fmt(mean)} and std {fmt(std)} at "
                         "the start")
    others = [f"{ctx.mlabel(k)} {fmt(100 * dead[k][1])} %" for k in bad[1:4]]
    if others:
        evidence += "; also dead: " + ", ".join(others)
    evidence += f"; {ctx.loss_text()}"
    evidence += rival_causes(why)
    if not died_later and ctx.input_scale >= 10:
        fix = (f"standardise the inputs ((x − mean) / std per feature; the largest has size "
               f"{fmt(ctx.input_scale)}): unscaled inputs push the pre-activations of {ctx.mlabel(j)} far "
               "below 0 from the first step; then keep biases at 0 and Kaiming init, or use LeakyReLU/GELU")
    elif died_later:
        fix = (f"lower the learning rate (updates reached {fmt(ctx.update_high)} of the weights), add "
               "BatchNorm before the ReLU, or use LeakyReLU(0.01)/GELU so units can recover")
    else:
        fix = (f"fix the initialisation of the layer feeding {ctx.mlabel(j)}: biases at 0 (not negative), "
               "Kaiming init for weights; or use LeakyReLU(0.01)/GELU, or BatchNorm before the ReLU")
    return Finding(
        code="dead_relu", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(onset, ctx.n - 1), layer=names[j], marks={"layers": [names[k] for k in bad[:4]]},
        title=f"Dead ReLUs: {fmt(100 * frac)} % of {ctx.mlabel(j)} never fires",
        evidence=evidence, fix=fix,
    )
