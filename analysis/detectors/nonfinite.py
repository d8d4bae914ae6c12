"""nonfinite — NaN or Inf appeared in the loss, weights, gradients, activations or outputs.

Looks at:   per-step counts of non-finite values in every parameter (weights, gradients),
            every leaf module's output, the model outputs and the loss.
Fires when: any of them holds a NaN/Inf on some step (always an error).
Evidence:   the first step with a non-finite value and, within that step, the first place
            in the order the values are produced: weights (used by the forward pass),
            then module outputs in model order, the model output, the loss, and finally
            gradients (in model order).
Fix:        find the cause ranked above (a learning rate or initialisation that blows up,
            gradients that explode, log/division of zero); lower the learning rate, clip
            gradients, and guard log/exp/division in custom code with epsilons or clamps.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import context
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import any_positive, first_true, quiet
from analysis.naming import module_label
from analysis.trace import Trace


def _first_row(trace: Trace, group: str, stat: str) -> tuple[int, int]:
    """(first row with a positive count, first column at that row) of an (N, K) count statistic."""
    row = first_true(trace.reduce_rows(group, stat, any_positive, "any_positive"))  # NaN: not measured
    if row < 0:
        return -1, -1
    one = np.array([row])
    at = trace.param_rows(stat, one) if group == "params" else trace.module_rows(stat, one)
    return row, int(np.argmax(at[0] > 0))


def _first_in(counts: np.ndarray) -> tuple[int, int]:
    """(first row with a positive count, first column at that row) of an (N, K) count array."""
    c = np.asarray(counts)
    if c.ndim == 1:
        c = c[:, None]
    row = first_true((c > 0).any(axis=1))  # NaN (not measured) compares False
    return (row, int(np.argmax(c[row] > 0))) if row >= 0 else (-1, -1)


def _candidates(trace: Trace) -> list[tuple[int, int, int, str, str | None]]:
    """Every kind of value that went non-finite in ``trace``'s own file: (row, production
    order within the step, column order, description, layer), earliest first."""
    ctx = context(trace)
    # (row, production order within the step, column order, description, layer)
    candidates: list[tuple[int, int, int, str, str | None]] = []
    params = ctx.info
    w_row, w_col = _first_row(trace, "params", "w_nonfinite")
    m_row, m_col = _first_row(trace, "modules", "a_nonfinite")
    if w_row >= 0:
        name = params[w_col]["name"]
        # Weights feed the forward pass of their row, unless that forward stayed finite:
        # then the row was recorded after optimizer.step() and the weights broke last.
        act = trace.module_rows("a_nonfinite", np.array([w_row]))[0]
        forward_seen = act.size > 0 and np.isfinite(act).any()
        order = 5 if forward_seen and (m_row < 0 or m_row > w_row) else 0
        candidates.append((w_row, order, w_col, f"weights of {ctx.label(w_col)}",
                           params[w_col]["module"] or name))
    if m_row >= 0:
        name = trace.module_names[m_col]
        candidates.append((m_row, 1, m_col, f"output of {module_label(trace, name)}", name))
    if trace.has("outputs/nonfinite"):
        o_row, _ = _first_in(trace.batch("outputs", "nonfinite"))
        if o_row >= 0:
            candidates.append((o_row, 2, 0, "model outputs", None))
    loss = ctx.loss
    l_row = first_true(~np.isfinite(loss))
    if l_row >= 0:
        candidates.append((l_row, 3, 0, f"loss ({loss[l_row]})", None))
    g_row, g_col = _first_row(trace, "params", "g_nonfinite")
    if g_row >= 0:
        name = params[g_col]["name"]
        candidates.append((g_row, 4, g_col, f"gradient of {ctx.label(g_col)}",
                           params[g_col]["module"] or name))
    return sorted(candidates)


def _origin(trace: Trace) -> tuple[Trace, list[tuple[int, int, int, str, str | None]]]:
    """The rank whose file shows the first non-finite value (earliest step, then earliest in
    the step's production order: a rank whose forward broke before the all-reduce spread
    it), with its candidates. One file: itself."""
    best: tuple[Trace, list] = (trace, _candidates(trace))
    if trace.n_ranks < 2:
        return best
    key = None
    for r in range(trace.n_ranks):
        view = trace if r == trace.rank_index else trace.rank(r)
        cands = best[1] if view is trace else _candidates(view)
        if cands:
            k = (int(view.steps[cands[0][0]]), cands[0][1], r)
            if key is None or k < key:
                key, best = k, (view, cands)
    return best


@detector(code="nonfinite", kind="symptom", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    trace, candidates = _origin(trace)
    if not candidates:
        return None
    ctx = context(trace)
    n, loss = ctx.n, ctx.loss
    row, _, _, what, layer = candidates[0]
    if trace.n_ranks > 1:
        what += f" on rank {trace.rank_index}"
    step = ctx.step(row)
    others = sorted({c[3].split(" (")[0] for c in candidates[1:] if c[0] == row})
    later = [f"{c[3].split(' (')[0]} from step {ctx.step(c[0])}" for c in candidates[1:] if c[0] > row]
    bad_rows = int(np.sum(~np.isfinite(loss)))
    evidence = f"first non-finite value at step {step}: {what}"
    if others:
        evidence += f"; same step: {', '.join(others[:4])}"
    if later:
        evidence += f"; then {', '.join(later[:3])}"
    evidence += f"; loss non-finite on {bad_rows} of {n} recorded steps"
    p = ctx.profile
    if row > 0 and np.isfinite(p.start):
        evidence += f" (it went from {p.start:.3g} at the start to {loss[max(row - 1, 0)]:.3g} just before)"
    return Finding(
        code="nonfinite", kind="symptom", severity="error", confidence=0.99,
        steps=[step, ctx.step(n - 1)], layer=layer, marks={"events": [step]},
        title=f"NaN/Inf from step {step}, first in {what}",
        evidence=evidence,
        fix=("fix the cause ranked above; restart from a checkpoint before step "
             f"{step} with a lower learning rate and gradient clipping "
             "(torch.nn.utils.clip_grad_norm_), and clamp log/exp/division inputs in custom code; "
             "torch.autograd.set_detect_anomaly(True) names the operation that produced it"),
    )
