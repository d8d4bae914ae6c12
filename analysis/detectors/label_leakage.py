"""label_leakage — an input feature gives the target away.

Looks at: the sampled rows of ``inputs`` and ``targets`` (the same rows of each batch) over
    an evenly thinned set of steps; the loss's early fall.
Fires when: some kept input feature is a function of the target over the sampled rows. For
    class targets: its variance within each class is ≤ 1e-6 of its total variance (a copy,
    scaled copy or one-hot column of the label). For a real-valued target column:
    1 − r² ≤ 1e-6 with some feature. Error (given ≥ 200 sampled rows and, for classes, ≥ 10
    rows of each), with a higher confidence when the loss also falls below 5 % of its
    initial value within the first 20 % of the run. A near-function (≤ 1e-3 within-class
    share, or 1 − r² ≤ 1e-4), or an exact one on fewer rows, is a warning with that loss
    fall, info without. Not checked: integer (token) inputs, and targets shaped like the inputs
    (autoencoders, sequence models), where equal columns are the task.
Evidence: the feature index, the within-class share or r, the rows and steps used, the loss.
Fix: drop that feature (and anything computed from the label) from the inputs; split and
    build features before the labels are attached; check the loss on a held-out set.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "label_leakage"


@detector(code=CODE, kind="cause", requires=("inputs/sample", "targets/sample"))
def detect(trace: Trace) -> Finding | None:
    if D.integer_dtype(trace, "inputs"):
        return None
    t_shape, x_shape = D.shape(trace, "targets"), D.shape(trace, "inputs")
    if t_shape and x_shape and len(t_shape) >= 2 and t_shape[1:] == x_shape[1:]:
        return None  # targets shaped like the inputs: reconstruction / sequence tasks
    rows = D.thin(trace, cap=1000)
    x = np.asarray(D.read(trace, "inputs", "sample", rows), np.float64)
    y = np.asarray(D.read(trace, "targets", "sample", rows), np.float64)
    if x.ndim != 3 or y.ndim != 3 or x.shape[:2] != y.shape[:2]:
        return None
    both = np.concatenate([x, y], axis=-1).reshape(-1, x.shape[-1] + y.shape[-1])
    both = both[np.isfinite(both).all(axis=1)]
    x2, y2 = both[:, : x.shape[-1]], both[:, x.shape[-1]:]
    if len(x2) < 32:
        return None
    labels = _labels(trace, y2)
    if labels is not None:
        found = _class_leak(x2, labels)
    else:
        found = _dense_leak(x2, y2)
    if found is None:
        return None
    feat, score, text, exact, enough = found
    fall, fall_row = _early_fall(trace)
    quick = fall <= 0.05
    if exact and not enough:  # few rows per class: a discrete feature can line up by chance
        exact = False
    if exact:
        sev, conf = "error", 0.9 + (0.07 if quick else 0.0)
    elif quick:
        sev, conf = "warning", 0.7
    else:
        sev, conf = "info", 0.35
    span = D.step_span(trace)
    name = D.feature_name(trace, feat)
    evidence = f"input feature {name} {text} over {len(x2)} sampled rows (steps {span[0]}–{span[1]})"
    if np.isfinite(fall):
        evidence += (f"; the loss fell to {fall:.1%} of its initial value by step "
                     f"{int(trace.steps[fall_row])}" if quick else
                     f"; the loss fell only to {fall:.0%} of its initial value early on")
    fix = (f"remove input feature {name} (and anything derived from the label) from the inputs; build "
           "features before labels are attached and check the loss on a held-out split")
    return Finding(code=CODE, kind="cause", severity=sev, confidence=conf, steps=span, layer=None,
                   title=f"Input feature {name} gives the target away", evidence=evidence, fix=fix)


def _labels(trace: Trace, y2: np.ndarray) -> np.ndarray | None:
    """Class labels of the sampled rows: index targets, one-hot rows, or a 0/1 column."""
    if D.target_kind(trace) == "index" and y2.shape[1] == 1:
        return np.round(y2[:, 0]).astype(np.int64)
    if y2.shape[1] >= 2 and np.all((y2 == 0) | (y2 == 1)) and np.all(y2.sum(axis=1) == 1):
        return y2.argmax(axis=1)
    if y2.shape[1] == 1 and np.all((y2 == 0) | (y2 == 1)):
        return y2[:, 0].astype(np.int64)
    return None


def _class_leak(x2: np.ndarray, labels: np.ndarray) -> tuple[int, float, str, bool, bool] | None:
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 3:
        return None
    within, _ = M.correlation_ratio(x2, labels)
    if not np.isfinite(within).any():
        return None
    feat = int(np.nanargmin(within))
    share = float(within[feat])
    if share > 1e-3:
        return None
    part = "zero" if share == 0 else f"{M.fmt(share)} of its total"
    text = f"is a function of the class: its variance within each of {len(classes)} classes is {part}"
    return feat, share, text, share <= 1e-6, len(x2) >= 200 and counts.min() >= 10


def _dense_leak(x2: np.ndarray, y2: np.ndarray) -> tuple[int, float, str, bool, bool] | None:
    best = None
    for j in range(min(y2.shape[1], 8)):
        if np.ptp(y2[:, j]) <= 0:
            continue
        r = M.abs_corr(x2, y2[:, j])
        if not np.isfinite(r).any():
            continue
        f = int(np.nanargmax(r))
        gap = 1 - float(r[f]) ** 2
        if best is None or gap < best[1]:
            best = (f, gap, j, float(r[f]))
    if best is None or best[1] > 1e-4:
        return None
    f, gap, j, r = best
    col = f" {j}" if y2.shape[1] > 1 else ""
    text = f"tracks target column{col} linearly (|r| = {r:.7f}, 1 − r² = {M.fmt(gap)})"
    return f, gap, text, gap <= 1e-6, len(x2) >= 200


def _early_fall(trace: Trace) -> tuple[float, int]:
    """(lowest smoothed loss in the first 20 % / initial loss, row where it was reached)."""
    loss = trace.loss()
    init = M.initial_level(loss, 3)
    win = D.early(trace)
    part = loss[win]
    if not np.isfinite(init) or init <= 0 or not np.isfinite(part).any():
        return np.nan, 0
    smooth = M.rolling_median(part, 5)
    row = int(np.nanargmin(smooth))
    return float(smooth[row] / init), row

