"""missing_classes — output classes that never occur in the targets (a label pipeline drops them).

Looks at:   the per-batch target class counts (``targets/class_hist``, class-index targets)
            against the model's output columns; the predicted classes
            (``outputs/argmax_hist``).
Fires when: the model has C ≥ 3 output columns (all of them counted: not truncated by
            ``max_columns``), ≥ 2 classes occur, and some class never occurs although the
            run saw enough labels to expect each class ≥ 30 times at an even share (from the
            start: onset 0); or classes that did occur stop occurring from some step on
            although, at their earlier share, ≥ 30 of each were due after it (onset there) and
            the batches just before were well mixed (batches ordered by class are
            ``unshuffled_data``). Error when ≥ 20 % of the classes are missing, else warning;
            info for token targets ``(B, T)`` never using some ids (a vocabulary's padding
            and special tokens).
Evidence:   the missing classes, how many labels the run saw, the expected count, whether
            the model still predicts them.
Onset:      0 when classes never occur; else the first step after the classes were last seen
Fix:        check the label pipeline: a filter or split that drops classes, a label mapping
            that merges or shifts them (``y - 1``, a dict missing keys), a dataset subset taken
            from the head of sorted data; or, if the classes are meant to be absent, build the
            head with as many outputs as there are classes.
"""

from __future__ import annotations

import numpy as np

from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.detectors.unshuffled_data import mixing_ratio
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "missing_classes"
MAX_CELLS = 4_000_000  # class_hist cells read whole; a thinned set of rows beyond
EXPECT = 30.0  # labels of a class that must have been due before its absence counts


def _hist(trace: Trace) -> tuple[np.ndarray, np.ndarray] | None:
    """``(class counts per row, trace row of each)``: every row, or a thinned set for huge traces."""
    if D.target_kind(trace) != "index" or not D.has(trace, "targets", "class_hist"):
        return None
    n = trace.n_steps
    rows = slice(0, n) if n * max(D.columns(trace, "outputs"), 1) <= MAX_CELLS else D.thin(trace)
    h = np.asarray(D.read(trace, "targets", "class_hist", rows), dtype=np.float64)
    ids = np.arange(n) if isinstance(rows, slice) else np.asarray(rows)
    return (h, ids) if h.ndim == 2 and h.shape[1] >= 3 else None


def _late_loss(hist: np.ndarray) -> tuple[int, list[int]] | None:
    """``(row, classes)``: the earliest row from which classes that occurred before stop occurring."""
    ok = np.isfinite(hist).all(axis=1)
    h = np.where(ok[:, None], hist, 0.0)
    seen = h > 0
    if not seen.any():
        return None
    n = len(h)
    last = np.where(seen.any(axis=0), n - 1 - np.argmax(seen[::-1], axis=0), -1)
    per_row = h.sum(axis=1)
    cum = np.cumsum(per_row)
    total = cum[-1]
    gone = []
    for c in np.flatnonzero(last >= 0).tolist():
        r = int(last[c]) + 1
        if r >= n:
            continue
        before = cum[r - 1]
        share = h[:r, c].sum() / before if before > 0 else 0.0
        if share * (total - before) >= EXPECT:
            gone.append((r, c))
    if not gone:
        return None
    row = min(r for r, _ in gone)
    # Classes that vanished together (within a few rows of the first).
    classes = sorted(c for r, c in gone if r - row <= max(5, n // 100))
    return row, classes


@detector(code=CODE, kind="cause", requires=("targets/class_hist",))
@quiet
def detect(trace: Trace) -> Finding | None:
    got = _hist(trace)
    if got is None:
        return None
    hist, ids = got
    k = hist.shape[1]
    out_cols = D.columns(trace, "outputs") if trace.has("outputs") else k
    if out_cols != k:
        return None  # the head is wider than the counted classes (max_columns): unknown
    counts = np.nansum(hist, axis=0)
    total = float(counts.sum())
    present = counts > 0
    if present.sum() < 2:
        return None  # one class only: constant_targets
    steps = trace.steps
    missing = np.flatnonzero(~present).tolist()
    onset_row = 0
    late = None
    if missing and total / k >= EXPECT:
        classes = missing
    else:
        late = _late_loss(hist)
        if late is None:
            return None
        onset_row, classes = int(ids[late[0]]), late[1]
        window = max(20, trace.n_steps // 20)
        if mixing_ratio(trace, slice(max(0, onset_row - window), onset_row)) >= 2.0:
            return None  # classes arrive and leave with the order of the data
    share = len(classes) / k
    sev = "error" if share >= 0.2 else "warning"
    tokens = len(D.shape(trace, "targets") or ()) >= 2
    if late is None and tokens:
        sev = "info"  # token targets: a vocabulary keeps ids (padding, specials) no target uses
    s0 = int(steps[onset_row])
    listed = ", ".join(str(c) for c in classes[:12]) + (", …" if len(classes) > 12 else "")
    pred = _predicted(trace, classes)
    if late is None:
        what = (f"the model has {k} output columns, but classes {listed} never occur among the "
                f"{int(total)} labels of the run (about {fmt_int(total / k)} each at an even share)")
        title = f"{len(classes)} of {k} classes never occur in the targets"
    else:
        what = (f"classes {listed} occurred until step {s0 - 1 if s0 > 0 else 0} and never again, although "
                f"at their earlier share ≥ {int(EXPECT)} of each were due in the "
                f"{int(np.nansum(hist[late[0]:]))} labels after it")
        title = f"Classes {listed} stop occurring in the targets at step {s0}"
    return Finding(
        code=CODE, kind="cause", severity=sev, confidence=0.85 if sev == "error" else 0.7,
        steps=[s0, int(steps[-1])], layer=None, title=title, evidence=what + pred,
        fix=("check the label pipeline: a filter or split that drops classes, a label mapping that merges "
             "or shifts them (y - 1, a dict missing keys), a subset taken from the head of sorted data; if "
             "the classes are meant to be absent, give the output layer as many units as there are classes"),
        marks={"onset": s0, "lane": "loss", "views": ["outputs", "timeline"]},
    )


def fmt_int(x: float) -> str:
    return f"{int(round(x)):,}"


def _predicted(trace: Trace, classes: list[int]) -> str:
    if not D.has(trace, "outputs", "argmax_hist"):
        return ""
    h = np.asarray(D.read(trace, "outputs", "argmax_hist", D.late(trace)), dtype=np.float64)
    if h.ndim != 2 or h.shape[1] <= max(classes):
        return ""
    tot = np.nansum(h)
    share = float(np.nansum(h[:, classes]) / tot) if tot > 0 else float("nan")
    if not np.isfinite(share):
        return ""
    return f"; late in the run the model predicts them for {share:.1%} of rows"
