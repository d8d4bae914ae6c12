"""symmetric_init — zero or constant initialisation: the units of a layer start, and stay, identical.

Looks at:   the first and last weight snapshots of every weight matrix: how much its rows
            (one per output unit) differ, as max-over-columns std across rows / RMS (0 =
            identical units); without snapshots, a weight whose std is 0 at the first step
            (a constant matrix). Also the weight mean at step 0 (0 = zero init).
Fires when: a layer's units are identical at the first step and still (nearly, < 5 %)
            identical at the last snapshot: error while the loss does not learn well,
            warning otherwise. Identical at the start without later evidence: warning (info
            for the output layer alone). Identical at the start but diverged later
            (symmetry broken, e.g. a zero-initialised output layer): info, and nothing
            when the loss falls well.
Evidence:   the layers, their initial value, their spread at the first and last snapshot.
Fix:        initialise weights randomly (PyTorch's default, kaiming_/xavier_ init); keep
            zero/constant init for biases (and at most the last layer).
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import clamp01, context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace


@detector(code="symmetric_init", kind="cause", requires=("params/w_std",))
@quiet
def detect(trace: Trace) -> Finding | None:
    ctx = context(trace)
    sym = ctx.symmetry
    if not sym:
        return None
    stayed = [i for i, v in sym.items() if v[1] < 0.05]
    unknown = [i for i, v in sym.items() if not np.isfinite(v[1])]
    broke = [i for i, v in sym.items() if v[1] >= 0.05]
    last_weight = ctx.weights[-1] if ctx.weights else -1
    if stayed:
        layers = stayed
        severity = "warning" if ctx.loss_good else "error"
        conf = 0.8 + (0.1 if ctx.loss_bad else 0.0) + 0.05 * min(len(stayed) - 1, 1)
    elif unknown:
        layers = unknown
        if unknown == [last_weight]:
            severity, conf = "info", 0.4
        else:
            severity = "info" if ctx.loss_good else "warning"
            conf = 0.55 + (0.15 if ctx.loss_bad else 0.0)
    else:
        if ctx.loss_good:
            return None
        layers, severity, conf = broke, "info", 0.3
    mean0 = ctx.stat("w_mean", slice(0, 1))[0] if ctx.n else np.array([])
    std0 = ctx.stat("w_std", slice(0, 1))[0] if ctx.n else np.array([])

    def init_text(i: int) -> str:
        m = mean0[i] if i < len(mean0) else float("nan")
        if m == 0 and std0[i] == 0:
            return "all zeros"
        if np.isfinite(m) and std0[i] <= 1e-7 * abs(m):
            return f"every entry {fmt(m, 3)}"
        return "identical rows"

    parts = []
    for i in layers[:4]:
        s0, s1, r0, r1 = sym[i]
        later = f", spread {fmt(s1)} at step {ctx.step(r1)}" if np.isfinite(s1) else ""
        parts.append(f"{ctx.label(i)} ({ctx.info[i]['shape'][0]} units): {init_text(i)} at step "
                     f"{ctx.step(r0)}{later}")
    evidence = (f"{len(layers)} weight layer(s) start with identical units (row spread 0; a random init "
                f"gives ≈1): " + "; ".join(parts))
    if stayed:
        evidence += ("; identical units receive identical gradients, so they never become different: the "
                     "layer behaves like a single unit")
    elif broke and layers is broke:
        evidence += "; the symmetry was broken later, so this probably only slowed the start"
    evidence += f"; {ctx.loss_text()}"
    first = layers[0]
    return Finding(
        code="symmetric_init", kind="cause", severity=severity, confidence=clamp01(conf),
        steps=ctx.span(sym[first][2], sym[first][3]), layer=ctx.info[first]["module"] or ctx.name(first),
        title=f"Symmetric initialisation: the units of {ctx.label(first)} are identical",
        evidence=evidence,
        fix=("initialise weights randomly: remove nn.init.zeros_/constant_ on weight matrices (PyTorch's "
             "default init, or nn.init.kaiming_uniform_/xavier_uniform_); zero init is fine for biases"),
    )
