"""data_outlier — one or a few batches far outside the rest set off the failure.

Looks at:   the per-batch input summaries (``inputs/maxabs``, ``inputs/std``,
            ``inputs/nonfinite``) and, for real-valued targets, the target range and spread
            (``targets/min``/``max``/``std``/``nonfinite``), each against the batches just
            before and just after it; then the loss at that batch and the next two steps.
Fires when: a batch's statistic is ≥ 3x the level of both neighbourhoods and ≥ 8 robust
            spreads of the run's own batch-to-batch noise above it (or holds NaN/Inf where
            the others do not), such batches are rare (≤ 10 % of the measured ones: a lasting
            change of scale is ``unnormalized_inputs`` or a curriculum, not an outlier), and
            the loss reacts within two steps. Error when the loss then goes non-finite or
            stays ≥ 3x higher; warning when it spikes and recovers; info when the run
            absorbed the batch.
Evidence:   the outlier batches' steps, which statistic, how far out, what the loss did.
Onset:      the step of the first outlier batch the loss reacted to (its own step: the loss at
            that row was computed on it)
Fix:        find the records of the marked batches (log the sample indices, or look at
            the Outputs view's input sample there); drop or repair them, validate the data
            on load (finite, in range), and clip gradients so one batch cannot blow up
            training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.detectors import _data as D
from analysis.detectors import _events as E
from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.detectors.loss_spike import loss_spikes
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "data_outlier"
MAX_SHARE = 0.10  # outliers are rare: above this share, it is the data's nature
MIN_RATIO = 3.0
SPREAD_K = 8.0
LATER = 2  # the loss may react at the batch's own step or in the next two


@dataclass
class Outlier:
    row: int
    what: str  # e.g. "inputs max |x|"
    factor: float  # value / local level (inf for non-finite values)
    value: float
    level: float


def _series(trace: Trace) -> list[tuple[str, np.ndarray]]:
    out = []
    if trace.has("inputs"):
        for field, label in (("maxabs", "inputs max |x|"), ("std", "inputs std")):
            if D.has(trace, "inputs", field):
                out.append((label, D.column(trace, "inputs", field)))
    if trace.has("targets") and D.target_kind(trace) != "index":
        mn, mx = D.column(trace, "targets", "min"), D.column(trace, "targets", "max")
        out.append(("targets max |y|", np.fmax(np.abs(mn), np.abs(mx))))
        if D.has(trace, "targets", "std"):
            out.append(("targets std", D.column(trace, "targets", "std")))
    return out


def _nonfinite_rows(trace: Trace) -> list[tuple[str, np.ndarray]]:
    out = []
    for group in ("inputs", "targets"):
        if D.has(trace, group, "nonfinite"):
            out.append((f"{group} NaN/Inf values", D.column(trace, group, "nonfinite")))
    return out


def outliers(trace: Trace) -> list[Outlier]:
    """Batches far outside their neighbours, in row order (empty when outliers are not rare)."""
    found: dict[int, Outlier] = {}
    for what, v in _series(trace):
        measured = int(np.isfinite(v).sum())
        sp = E.spikes(v, min_ratio=MIN_RATIO, spread_k=SPREAD_K)
        if not len(sp.rows) or len(sp.rows) > MAX_SHARE * max(measured, 1):
            continue
        for r, x, lv in zip(sp.rows.tolist(), sp.excess.tolist(), sp.level.tolist()):
            f = float(np.exp(x))
            if r not in found or found[r].factor < f:
                found[r] = Outlier(r, what, f, float(v[r]), float(lv))
    for what, nf in _nonfinite_rows(trace):
        bad = np.flatnonzero(np.isfinite(nf) & (nf > 0))
        measured = int(np.isfinite(nf).sum())
        if not len(bad) or len(bad) > MAX_SHARE * max(measured, 1):
            continue
        for r in bad.tolist():
            found[r] = Outlier(r, what, float("inf"), float(nf[r]), 0.0)
    return [found[r] for r in sorted(found)]


def _reaction(trace: Trace, row: int, spike_rows: set[int]) -> str | None:
    """What the loss did at ``row`` and the next steps: ``nonfinite``, ``jump``, ``spike`` or None."""
    loss = context(trace).loss
    n = len(loss)
    window = range(row, min(row + LATER + 1, n))
    if row > 0 and np.isfinite(loss[row - 1]) and any(not np.isfinite(loss[r]) for r in window):
        return "nonfinite"
    half = E.neighbourhood(n)
    before = loss[max(0, row - half):row]
    after = loss[row + 1:row + 1 + half]
    b = np.nanmedian(before[np.isfinite(before)]) if np.isfinite(before).any() else np.nan
    a = np.nanmedian(np.where(np.isfinite(after), after, np.inf)) if len(after) else np.nan
    if np.isfinite(b) and b > 0 and a >= 3 * b:
        return "jump"
    if any(r in spike_rows for r in window):
        return "spike"
    return None


@detector(code=CODE, kind="cause", requires=("steps/loss",))
@quiet
def detect(trace: Trace) -> Finding | None:
    found = outliers(trace)
    if not found:
        return None
    spike_rows = set(loss_spikes(trace).rows.tolist())
    reacted = [(o, _reaction(trace, o.row, spike_rows)) for o in found]
    hits = [(o, r) for o, r in reacted if r is not None]
    steps = trace.steps
    loss = context(trace).loss
    if hits:
        first, how = hits[0]
        sev = "error" if any(r in ("nonfinite", "jump") for _, r in hits) else "warning"
        conf = 0.92 if sev == "error" else 0.8
    else:
        first, how = found[0], None
        sev, conf = "info", 0.3
    s0 = int(steps[first.row])
    last = int(steps[(hits or reacted)[-1][0].row])
    what = _describe(first)
    effect = {
        "nonfinite": "the loss went non-finite right after it",
        "jump": "the loss jumped and stayed ≥ 3x higher after it",
        "spike": f"the loss spiked to {fmt(loss[first.row])} on it and recovered",
        None: "the loss did not react: the run absorbed it",
    }[how]
    others = [o for o in found if o is not first]
    more = (f"; {len(others)} other outlier batch{'es' if len(others) > 1 else ''} at step"
            f"{'s' if len(others) > 1 else ''} " + ", ".join(str(int(steps[o.row])) for o in others[:8])
            if others else "")
    return Finding(
        code=CODE, kind="cause", severity=sev, confidence=conf, steps=[s0, max(s0, last)], layer=None,
        title=f"The batch at step {s0} lies far outside the data ({first.what})",
        evidence=(f"step {s0}: {what}; {effect}{more}. Until then training behaved as before "
                  f"(loss {fmt(np.nanmedian(loss[max(0, first.row - 50):first.row]))} over the 50 "
                  "steps before)" if first.row > 0 else f"step {s0}: {what}; {effect}{more}"),
        fix=(f"find the records in the batch of step {s0} (log the sample indices, or look at the input "
             "sample in the Outputs view there); drop or repair them, validate the data as it is loaded "
             "(torch.isfinite, expected ranges), and clip gradients (clip_grad_norm_) so one batch cannot "
             "blow up training"),
        marks={"onset": s0, "events": [int(steps[o.row]) for o in found[:20]], "lane": "loss",
               "views": ["timeline", "outputs"]},
    )


def _describe(o: Outlier) -> str:
    if not np.isfinite(o.factor):
        return f"{o.what}: {int(o.value)} (the batches around it have none)"
    return (f"{o.what} {fmt(o.value)}, {fmt(o.factor)}x the {fmt(o.level)} of the batches around it")
