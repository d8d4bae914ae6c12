"""dominant_bias — one output unit's bias dwarfs the rest, so that class wins for every input.

Looks at: the output layer's bias (the last ``*bias`` parameter with one entry per output
    column) in the first and last weight snapshots; the sampled output rows around those
    steps, mapped back to logits (log p for softmax outputs, logit p for sigmoid ones),
    which give the input-driven spread of the logit gap between the top unit and the
    runner-up; the predicted classes (``argmax_hist``) over the last 20 % of the run.
Fires when: (class targets or a classification loss) at the first snapshot the top unit's
    bias lead over the runner-up is ≥ 2 nats and ≥ 3× the std of the logit gap across
    inputs, accounts for at least half of that gap, and that
    unit is the argmax for ≥ 90 % of rows — and it still wins ≥ 90 % of rows late in the
    run: error; when training overcame it only after ≥ 10 % of the run, warning; sooner,
    info. A lead that appears only later is a warning, or info when the unit is the
    majority target class (the bias learnt the class prior: see class_imbalance). With one
    output column, the same on |bias| and the logit's sign.
Evidence: the parameter, the unit, its lead, the spread and ratio, the share of rows it wins
    early and late, the steps.
Fix: re-initialise that bias (``nn.init.zeros_``, or log class priors) and find the code that
    set it; with a learning rate too small to undo it, the unit keeps winning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "dominant_bias"
MIN_GAP = 2.0  # nats: a lead that multiplies the odds by e² ≈ 7 — below that nothing is "dwarfed"


@dataclass
class Lead:
    unit: int
    runner_up: int | None
    gap: float
    spread: float
    wins: float
    step: int

    @property
    def ratio(self) -> float:
        return self.gap / self.spread if self.spread > 0 else math.inf


@detector(code=CODE, kind="cause", requires=("outputs/sample",))
def detect(trace: Trace) -> Finding | None:
    cols = D.columns(trace, "outputs")
    if D.target_classes(trace) is None and D.loss_class(trace) not in M.CLASSIFICATION_LOSSES:
        return None  # real-valued targets: a bias is just an offset
    p = D.output_bias(trace, cols)
    snaps = trace.snapshot_steps()
    if p is None or not len(snaps):
        return None
    form = D.output_form(trace)
    first = _lead(trace, p, 0, snaps, form, cols)
    last = _lead(trace, p, len(snaps) - 1, snaps, form, cols) if len(snaps) > 1 else first
    late_rows = D.late(trace)
    pred = D.predicted_shares(trace, late_rows)
    name = trace.param_names[p]
    if first is not None:
        late_win = _late_share(pred, first.unit, cols)
        if late_win >= 0.9:
            conf = 0.8 + 0.15 * min(math.log10(max(first.ratio, 3) / 3), 1.0)
            return _finding(trace, name, first, late_win, late_rows, "error", conf, "from the first step")
        held = _held_rows(trace, first.unit)
        if held >= 0.1:
            until = int(trace.steps[min(int(held * trace.n_steps), trace.n_steps - 1)])
            conf = 0.5 + 0.3 * min(held / 0.5, 1)
            return _finding(trace, name, first, late_win, late_rows, "warning", conf,
                            f"for the first {held:.0%} of the run, until step ~{until}", end=until)
        return _finding(trace, name, first, late_win, late_rows, "info", 0.3,
                        "at the first step, but training soon overcame it")
    if last is None:
        return None
    late_win = _late_share(pred, last.unit, cols)
    if late_win < 0.9:
        return None
    shares = D.true_shares(trace)
    unit_share = float(shares[last.unit]) if shares is not None and last.unit < len(shares) else 0.0
    if cols == 1 and shares is not None:
        unit_share = float(shares[1] if last.gap > 0 else shares[0])
    if unit_share >= 0.6:
        return _finding(trace, name, last, late_win, late_rows, "info", 0.3,
                        f"by the end, following the class prior ({unit_share:.0%} of targets)")
    return _finding(trace, name, last, late_win, late_rows, "warning", 0.6, "by the end of the run")


def _held_rows(trace: Trace, unit: int) -> float:
    """Share of the run, from the start, during which ``unit`` won ≥ 90 % of each batch."""
    rows = D.thin(trace)
    counts = D.predicted_counts(trace, rows)
    if counts is None or unit >= counts.shape[1]:
        return 0.0
    tot = counts.sum(axis=1)
    share = np.where(tot > 0, counts[:, unit] / np.maximum(tot, 1), np.nan)
    smooth = M.rolling_median(share, 5)
    lost = np.flatnonzero(np.isfinite(smooth) & (smooth < 0.9))
    index = np.arange(trace.n_steps)[rows]
    end = index[lost[0]] if len(lost) else trace.n_steps
    return float(end / max(trace.n_steps, 1))


def _late_share(pred: np.ndarray | None, unit: int, cols: int) -> float:
    if pred is None or not pred.size:
        return math.nan
    if cols == 1:
        return float(pred[1] if unit == 1 else pred[0])
    return float(pred[unit]) if unit < len(pred) else math.nan


def _lead(trace: Trace, p: int, index: int, snaps: np.ndarray, form: str, cols: int) -> Lead | None:
    """The bias lead at snapshot ``index`` when it dominates (ratio ≥ 3, wins ≥ 90 %), else None."""
    bias = trace.snapshot("weight", p, index)
    if bias is None:
        return None
    b = np.asarray(bias, np.float64).ravel()
    if b.size != cols or not np.isfinite(b).all():
        return None
    step = int(snaps[index])
    r = trace.row_of(step)
    rows = slice(max(0, r - 2), min(trace.n_steps, r + 6))
    sample = D.flat_rows(D.read(trace, "outputs", "sample", rows))
    z = M.to_logits(sample, form == "softmax", form == "sigmoid")
    if len(z) < 8 or z.shape[1] != cols:
        return None
    if cols >= 2:
        k = int(np.argmax(b))
        rest = np.where(np.arange(cols) == k, -np.inf, b)
        j = int(np.argmax(rest))
        gap = float(b[k] - b[j])
        d = z[:, k] - z[:, j]
        wins = M.frac(np.argmax(z, axis=1) == k)
        lead = Lead(k, j, gap, float(np.std(d)), wins, step)
    else:
        sign = 1.0 if b[0] >= 0 else -1.0
        d = z[:, 0] * sign
        lead = Lead(1 if sign > 0 else 0, None, float(abs(b[0])), float(np.std(d)), M.frac(d > 0), step)
    input_part = float(np.mean(d)) - lead.gap
    if lead.ratio >= 3 and lead.gap >= MIN_GAP and lead.wins >= 0.9 and lead.gap >= abs(input_part):
        return lead
    return None


def _finding(trace: Trace, name: str, lead: Lead, late_win: float, late_rows: slice, severity: str,
             conf: float, when: str, end: int | None = None) -> Finding:
    late_span = D.step_span(trace, late_rows)
    if lead.runner_up is not None:
        what = (f"gives output unit {lead.unit} a lead of {M.fmt(lead.gap)} over the next unit "
                f"({lead.runner_up}) at step {lead.step}")
        title = f"The bias of output unit {lead.unit} dominates"
    else:
        what = f"is {M.fmt(lead.gap if lead.unit else -lead.gap)} at step {lead.step} (one output logit)"
        title = f"The output bias pushes every prediction to class {lead.unit}"
    evidence = (f"`{name}` {what} — {M.fmt(lead.ratio)}× the spread of the input-driven part of the logit "
                f"gap (std {M.fmt(lead.spread)}); class {lead.unit} wins {lead.wins:.0%} of sampled rows "
                "then")
    if np.isfinite(late_win):
        evidence += f" and {late_win:.0%} of rows over steps {late_span[0]}–{late_span[1]}"
    fix = (f"re-initialise `{name}` (nn.init.zeros_, or the log class priors) and remove the code that gives "
           f"unit {lead.unit} a bias of this size; a learning rate too small to undo it keeps that class "
           "winning")
    if severity == "info":
        fix = f"no action needed if the run is otherwise fine; {fix}"
    span = [lead.step, late_span[1] if end is None else end] if severity != "info" else [lead.step, lead.step]
    return Finding(code=CODE, kind="cause", severity=severity, confidence=conf, steps=span, layer=name,
                   title=title + f" ({when})", evidence=evidence, fix=fix)
