"""rank_divergence — data-parallel replicas that should be identical drift apart.

Looks at:   every rank's file of a multi-process run: the weight norm ``w_norm`` of each
            replicated (not sharded) parameter at every recorded step, compared across
            ranks (to rank 0's with two ranks, to the ranks' median with more).
Fires when: some parameter's relative difference between ranks exceeds 1e-5 (DDP replicas
            receive the same all-reduced gradient and the same update, so they agree to
            the last bit: a difference is a rank-local change, not rounding) and it holds
            on the last common step or on ≥ 3 steps; a NaN on some ranks and not on others
            counts. Warning; error once the difference reaches 1e-3.
Evidence:   the parameter that differs most, the rank(s) that drifted, the difference at the
            onset and at the end, how many parameters differ.
Fix:        apply every change to the weights on every rank: no rank-conditional updates or
            weight edits (``if rank == 0:`` around ``step``, a load or a re-init on one rank),
            keep every parameter inside the DDP-wrapped module so its gradient is
            all-reduced, broadcast buffers (``broadcast_buffers=True``, SyncBatchNorm), and
            seed any rank-local randomness that touches the weights identically.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors._optim import fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import first_true, quiet
from analysis.trace import Trace

CODE = "rank_divergence"
TOL = 1e-5  # identical replicas differ by exactly 0
LOUD = 1e-3


def _spread(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per rank ``(R, N, P)`` relative distance of ``w`` from the reference replica, and
    ``(N, P)`` whether the ranks disagree on being finite."""
    ref = w[0] if len(w) == 2 else np.median(w, axis=0)
    rel = np.abs(w - ref) / np.maximum(np.abs(ref), 1e-30)
    fin = np.isfinite(w)
    mixed = fin.any(axis=0) & ~fin.all(axis=0)
    return np.where(np.isfinite(rel), rel, 0.0), mixed


@detector(code=CODE, kind="cause")
@quiet
def detect(trace: Trace) -> Finding | None:
    if trace.n_ranks < 2:
        return None
    views = [trace.rank(r) for r in range(trace.n_ranks)]
    n = min(v.n_steps for v in views)
    steps = views[0].steps[:n]
    if any(not np.array_equal(v.steps[:n], steps) for v in views):
        return None  # ranks recorded different steps: nothing to line up
    cols = np.flatnonzero(~trace.sharded)
    if n == 0 or not len(cols):
        return None
    w = np.stack([v.param_stat("w_norm")[:n, cols].astype(np.float64) for v in views])
    rel, mixed = _spread(w)
    worst = rel.max(axis=0)  # (N, P)
    bad = (worst > TOL) | mixed
    per_param = bad.sum(axis=0)
    hit = (bad[-1] | (per_param >= 3)) & (per_param > 0)
    if not hit.any():
        return None
    onset_rows = np.array([first_true(bad[:, j]) if hit[j] else n for j in range(len(cols))])
    row = int(onset_rows.min())
    j = int(np.argmax(np.where(hit, worst[-1] + mixed[-1], -1.0)))
    p = int(cols[j])
    info = trace.param_info[p]
    end = float(worst[-1, j])
    at_onset = float(worst[int(onset_rows[j]), j])
    odd = (rel[:, :, j] > TOL) | (mixed[:, j] & ~np.isfinite(w[:, :, j]))  # (R, N)
    drifted = [r for r in range(len(views)) if odd[r].any()] if len(views) > 2 else [1]
    who = ", ".join(f"rank {r}" for r in drifted)
    ref = "rank 0" if len(views) == 2 else "the other ranks"
    names = [trace.param_info[int(cols[k])]["name"] for k in np.flatnonzero(hit)]
    layers = sorted({trace.param_info[int(cols[k])]["module"] or trace.param_info[int(cols[k])]["name"]
                     for k in np.flatnonzero(hit)})
    step, last = int(steps[row]), int(steps[-1])
    evidence = (f"{info['name']}: the weight norm of {who} differs from {ref}'s by {fmt(at_onset)} "
                f"(relative) from step {int(steps[onset_rows[j]])}, {fmt(end)} at step {last}; "
                f"{len(names)} of {len(cols)} replicated parameters differ across the "
                f"{len(views)} ranks ({', '.join(names[:4])}{', …' if len(names) > 4 else ''}); "
                "replicas fed the same all-reduced gradients stay identical")
    return Finding(
        code=CODE, kind="cause", severity="error" if end >= LOUD else "warning", confidence=0.9,
        steps=[step, last], layer=info["module"] or info["name"],
        title=f"replicas drift apart from step {step}: {who} no longer matches {ref}",
        evidence=evidence,
        fix=("apply every weight change on every rank: no rank-conditional update, load or re-init "
             "(`if rank == 0:` around it), keep every parameter inside the DDP-wrapped module so its "
             "gradient is all-reduced, broadcast buffers (broadcast_buffers=True, SyncBatchNorm), and seed "
             "rank-local randomness that touches the weights identically"),
        marks={"onset": step, "events": [step], "layers": layers, "metric": "w_norm",
               "views": ["timeline", "heatmap"]},
    )
