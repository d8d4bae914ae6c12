"""exploding_gradients — gradient norms grow by orders of magnitude, over time or through depth.

Looks at:   the global gradient norm per step (its peak against its start, on the rows
            before anything went non-finite), the step-0 activation growth through depth and
            loss against a constant predictor's, the relative gradient ‖g‖/‖w‖ of every weight
            layer through depth, the first step with a non-finite gradient, and competing
            explanations (missing zero_grad, an oversized learning rate, oversized initial
            weights, unscaled inputs).
Fires when: the gradient norm peaks ≥ 100x above its start (error from 10⁴x, or when it
            then goes non-finite), or single steps spike ≥ 100x above its median (after the
            first 5 % of the run) while the loss does not learn (error from 1000x), or at
            step 0 activations grow ≥ 10x through ≥ 3 weight layers with a loss ≥ 10x a
            constant predictor's (error from 100x), or the input-side layers get ≥ 100x the
            relative gradient of the output side (≥ 10x, growing layer after layer, Spearman
            ≤ -0.9, when the loss does not learn: warning); error needs a loss that does not
            improve.
            Info when the loss falls well anyway; capped at warning when another cause
            explains the growth.
Evidence:   start and peak gradient norm with their steps, the growth factor, step-0
            gradient/weight ratios, the depth profile, the first non-finite gradient.
Onset:      step 0 for growth through depth or at initialisation; else the first step the global
            gradient norm departs 100x (10x) from its earlier level, the first 30x spike, or
            the first non-finite gradient, whichever comes first.
Fix:        clip the gradient norm (the value quoted is the 99th percentile before the
            blow-up), fix the initialisation / add normalisation layers, lower the
            learning rate.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt, rival_causes
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import (
    binned,
    depth_profile,
    first_true,
    nanmedian,
    nanpercentile,
    quiet,
    spearman,
    theil_sen,
)
from analysis.onset import first_spike, from_start, level_shift
from analysis.trace import Trace


def alternatives(ctx) -> list[str]:
    why = []
    if ctx.carry_high:
        why.append("gradients accumulate across steps (missing zero_grad), which grows their norm")
    if ctx.update_high >= 0.1 and not (ctx.init_blowup >= 10):
        why.append(f"updates of {fmt(ctx.update_high)} of the weights per step (learning rate) came first")
    if ctx.large_init_layers:
        why.append(f"{ctx.label(ctx.large_init_layers[0])} starts far above fan-in scale (large init)")
    scale = ctx.input_scale
    if scale >= 10:
        why.append(f"the inputs are not normalised (largest feature size {fmt(scale)}, unit ≈ 1)")
    return why


def time_growth(ctx, g_bad_row: int) -> tuple[float, int, int, float]:
    """(log10 peak/start, start row, peak row, clip value) of the global gradient norm."""
    g = ctx.grad_global
    rows = ctx.sub
    keep = rows < g_bad_row if g_bad_row >= 0 else np.ones(len(rows), bool)
    g, rows = g[keep], rows[keep]
    ok = np.isfinite(g) & (g > 0)
    if ok.sum() < 4:
        return float("nan"), 0, 0, float("nan")
    g, rows = g[ok], rows[ok]
    k = max(1, len(g) // 20)
    start = float(np.median(g[:k]))
    b = binned(g, min(40, len(g)))
    peak_bin = int(np.nanargmax(b))
    edges = np.linspace(0, len(g), len(b) + 1).astype(int)
    peak_row = int(rows[min(edges[peak_bin + 1] - 1, len(rows) - 1)])
    growth = float(np.log10(b[peak_bin] / start)) if start > 0 else float("nan")
    onset = first_true(g > 10 * start)
    clip = float(nanpercentile(g[: max(onset, k)], 99)) if onset != 0 else start
    return growth, int(rows[0]), peak_row, clip


def hidden_depth_trend(ctx, layers: list[int]) -> tuple[float, float]:
    """``(span, rho)`` of the relative gradient through the hidden weight layers (the output layer
    left out: its gradient differs in kind) at the first measured rows, as a robust fit: span =
    Theil–Sen slope of log10 ‖g‖/‖w‖ against depth x (layers - 1); NaN with fewer than 6 layers."""
    hidden = layers[:-1]
    if len(hidden) < 6:
        return float("nan"), float("nan")
    rows = ctx.sub_early if len(ctx.sub_early) else np.arange(min(3, len(ctx.sub)))
    rel = nanmedian(ctx.rel_grad[rows][:, hidden], axis=0)
    ok = np.flatnonzero(np.isfinite(rel) & (rel > 0))
    if len(ok) < 6:
        return float("nan"), float("nan")
    slope = theil_sen(ok, np.log10(rel[ok]))
    return float(slope * (len(hidden) - 1)), spearman(ok, np.log10(rel[ok]))


def _growth_onset(ctx, g_bad: int, factor: float = 100.0) -> int:
    """Row where the global gradient norm departs ``factor``x (then 10x) from its earlier level;
    for a rise that did not last (a blow-up the net died of), its first 10x jump over the rows
    before; 0 when neither (it was high from the start)."""
    g = ctx.grad_full[: g_bad] if g_bad >= 0 else ctx.grad_full
    for f in (factor, 10.0):
        row = level_shift(g, f)
        if row >= 0:
            return row
    return max(first_spike(g, 10.0), 0)


def spikes(ctx, g_bad: int) -> tuple[float, int, float]:
    """(largest global gradient norm over its median after the first 5 % of rows, its row, the
    99th percentile before the first 30x spike), on every row: spikes are single steps."""
    idx = [i for i, p in enumerate(ctx.info) if p["requires_grad"]]
    if not idx or ctx.n < 20:
        return float("nan"), -1, float("nan")
    g = ctx.grad_full
    g = g[: g_bad] if g_bad >= 0 else g
    g = np.where(g > 0, g, np.nan)
    med = nanmedian(g)
    skip = max(1, ctx.n // 20)
    if not np.isfinite(med) or len(g) <= skip or not np.isfinite(g[skip:]).any():
        return float("nan"), -1, float("nan")
    row = skip + int(np.nanargmax(g[skip:]))
    first = first_true(np.nan_to_num(g, nan=0.0) > 30 * med)
    clip = float(nanpercentile(g[: max(first, skip)], 99))
    return float(g[row] / med), row, clip


@detector(code="exploding_gradients", kind="cause", requires=("params/g_norm", "params/w_norm"))
@quiet
def detect(trace: Trace) -> Finding | None:  # noqa: C901 - three signals, one verdict
    ctx = context(trace)
    g_bad = ctx.grad_bad_row
    growth, r0, r_peak, clip = time_growth(ctx, g_bad)
    init = ctx.init_rel_grad
    layers = [i for i in ctx.weights if ctx.info[i]["requires_grad"]]
    rel = nanmedian(ctx.rel_grad[:, layers], axis=0) if layers else np.array([])
    span, rho = depth_profile(rel) if len(layers) >= 3 else (float("nan"), float("nan"))
    span, rho = min((span, rho), hidden_depth_trend(ctx, layers),
                    key=lambda v: v[0] if np.isfinite(v[0]) else 9.0)
    signals, level = [], 0  # level: 1 = warning-grade evidence, 2 = error-grade
    onsets: list[int] = []  # rows where each signal's evidence departs
    if np.isfinite(growth) and growth >= 2:
        level = max(level, 2 if growth >= 4 or g_bad >= 0 else 1)
        onsets.append(_growth_onset(ctx, g_bad))
        signals.append(f"global gradient norm rose {fmt(10 ** growth)}x, from step {ctx.step(onsets[-1])} "
                       f"to a peak near step {ctx.step(r_peak)}")
    if g_bad >= 0 and np.isfinite(growth) and growth >= 1:
        level = max(level, 2)
        onsets.append(min(_growth_onset(ctx, g_bad, factor=10.0), g_bad))
        signals.append(f"then non-finite gradients from step {ctx.step(g_bad)}")
    blowup, (act, first, last) = ctx.init_blowup, ctx.act_growth
    at_init = len(layers) >= 3 and act >= 1 and blowup >= 10
    if at_init:
        level = max(level, 2 if blowup >= 100 or act >= 2 else 1)
        onsets.append(0)
        signals.append(f"at step {ctx.step(0)} activations already grow {fmt(10 ** act)}x through depth "
                       f"({ctx.mlabel(first)} to {ctx.mlabel(last)}), the loss is {fmt(blowup)}x what a "
                       "constant "
                       f"prediction scores and gradients are {fmt(init)}x the weights they update")
    if np.isfinite(span) and (span <= -1.5 and rho <= -0.7 or span <= -1.0 and rho <= -0.9 and ctx.loss_bad):
        level = max(level, 2 if span <= -3 else 1)
        onsets.append(0)
        signals.append(f"the input-side layers get {fmt(10 ** -span)}x the relative gradient of the "
                       f"output layer (Spearman ρ = {fmt(rho)} with depth)")
    spike, spike_row, spike_clip = spikes(ctx, g_bad)
    if spike >= 100 and ctx.loss_bad:
        level = max(level, 2 if spike >= 1000 else 1)
        first = first_spike(ctx.grad_full[: g_bad] if g_bad >= 0 else ctx.grad_full, 30.0)
        onsets.append(first if first >= 0 else spike_row)
        signals.append(f"the gradient norm spikes to {fmt(spike)}x its median (step {ctx.step(spike_row)}"
                       + (f", first 30x spike at step {ctx.step(first)})"
                          if 0 <= first != spike_row else ")"))
        if len(signals) == 1:
            clip = spike_clip
    if level == 0:
        return None
    severity = "error" if level == 2 and ctx.loss_bad else "warning"
    if ctx.loss_good:
        severity = "info"
    conf = 0.55 + 0.15 * (level - 1) + (0.15 if ctx.loss_bad else 0.0) + 0.05 * (len(signals) - 1)
    why = alternatives(ctx)
    if why:
        conf *= 0.5
        severity = "info" if severity == "info" else "warning"
    if at_init and layers:
        head = nanmedian(ctx.rel_grad[:3, layers], axis=0)
        worst = layers[int(np.nanargmax(np.nan_to_num(head, nan=-1)))]
    elif len(rel) and np.isfinite(rel).any():
        worst = layers[int(np.nanargmax(np.nan_to_num(rel, nan=-1)))]
    else:
        worst = None
    evidence = "; ".join(signals) + f"; {ctx.loss_text()}"
    evidence += rival_causes(why)
    clip_text = f"clip the global gradient norm at ~{fmt(clip)} (99th percentile before the blow-up) " \
        if np.isfinite(clip) and clip > 0 else "clip the gradient norm (clip_grad_norm_) "
    fix = (clip_text + "with torch.nn.utils.clip_grad_norm_; scale the initialisation to fan-in "
           "(Kaiming/Xavier) or add BatchNorm/LayerNorm/residual connections; lower the learning rate")
    onset = min(onsets) if onsets else 0
    onset = 0 if from_start(onset, ctx.n) else onset
    last = g_bad if g_bad >= 0 else (r_peak if np.isfinite(growth) and growth >= 2 else ctx.n - 1)
    events = [ctx.step(r) for r in (spike_row, g_bad) if r is not None and r >= 0 and spike >= 100]
    marks = {"events": events, "layers": [ctx.info[i]["module"] for i in layers[:1] + layers[-1:]]}
    return Finding(
        code="exploding_gradients", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(onset, max(last, onset)), layer=(ctx.info[worst]["module"] or ctx.name(worst))
        if worst is not None else None, marks=marks,
        title="Exploding gradients: " + signals[0].split(",")[0].split(" (")[0],
        evidence=evidence, fix=fix,
    )
