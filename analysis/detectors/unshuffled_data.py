"""unshuffled_data — batches ordered by class or target: no shuffling of sorted data.

Looks at:   each batch's target composition against the run's overall one: the class
            counts (``targets/class_hist``) of class-index targets, the batch mean
            (``targets/mean``, ``targets/std``) of a single real-valued target; the loss.
Fires when: batches differ from the overall composition far more than random batches of
            their size can: the chi-square of a batch's class shares (or the squared z of its
            mean) per degree of freedom — ≈ 1 for shuffled batches, ≈ the batch size for
            single-class batches — is ≥ 4 on most (≥ 60 %) batches from some step on (the
            onset), with batches of ≥ 8 rows. Error when the typical batch is close to
            single-class / single-value (ratio ≥ a quarter of the batch size). A stratified
            sampler (ratio < 1) or a curriculum that changes the mix once does not count.
Evidence:   the typical ratio, the share of the batch's top class against its overall share,
            from which step.
Onset:      the first step from which most batches are far from random draws of the run's class
            mix (or target distribution)
Fix:        shuffle: ``DataLoader(..., shuffle=True)`` (or a ``RandomSampler`` /
            ``DistributedSampler(shuffle=True)`` with ``set_epoch``); shuffle once after
            concatenating per-class files; for streams, a shuffle buffer.
"""

from __future__ import annotations

import numpy as np

from analysis import metrics as M
from analysis.detectors import _data as D
from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "unshuffled_data"
RATIO = 4.0  # per-dof chi-square a batch needs to count as not a random draw
SHARE = 0.6  # of batches from the onset on
MIN_BATCH = 8
MAX_CELLS = 4_000_000


def _batch_rows(trace: Trace) -> int | None:
    shp = D.shape(trace, "targets")
    return int(shp[0]) if shp else None


def _rows(trace: Trace) -> slice | np.ndarray:
    n = trace.n_steps
    k = max(D.columns(trace, "outputs") if trace.has("outputs") else 1, 1)
    return slice(0, n) if n * k <= MAX_CELLS else D.thin(trace)


@quiet
def batch_ratios(trace: Trace) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(trace rows, per-row ratio, how)``: per batch, its departure from the overall target
    composition in units of what random batches of its size show (NaN where unmeasured)."""
    b = _batch_rows(trace)
    if b is None or b < MIN_BATCH or not trace.has("targets"):
        return None
    rows = _rows(trace)
    ids = np.arange(trace.n_steps)[rows]
    kind = D.target_kind(trace)
    if kind == "index" and D.has(trace, "targets", "class_hist"):
        h = np.asarray(D.read(trace, "targets", "class_hist", rows), dtype=np.float64)
        if h.ndim != 2 or h.shape[1] < 2:
            return None
        n_b = h.sum(axis=1)
        g = np.nansum(h, axis=0)
        present = g > 0
        if present.sum() < 2:
            return None
        g = g[present] / g[present].sum()
        p = h[:, present] / np.where(n_b > 0, n_b, np.nan)[:, None]
        chi = ((p - g) ** 2 / g).sum(axis=1) * np.minimum(n_b, b)
        return ids, chi / (present.sum() - 1), "class"
    if kind != "index" and D.columns(trace, "targets") == 1 and D.has(trace, "targets", "mean"):
        m = D.column(trace, "targets", "mean")[rows]
        s = D.column(trace, "targets", "std")[rows]
        mu = M.nanmedian(m)
        var = float(np.nanmean(s * s) + np.nanvar(m))
        if not var > 0:
            return None
        return ids, (m - mu) ** 2 * b / var, "mean"
    return None


def mixing_ratio(trace: Trace, rows: slice) -> float:
    """Median per-batch ratio over trace ``rows`` (NaN when unknown): ≈ 1 for shuffled batches."""
    got = batch_ratios(trace)
    if got is None:
        return float("nan")
    ids, r, _ = got
    sel = (ids >= (rows.start or 0)) & (ids < (rows.stop if rows.stop is not None else trace.n_steps))
    return float(M.nanmedian(r[sel])) if sel.any() else float("nan")


@detector(code=CODE, kind="cause", requires=("targets",))
@quiet
def detect(trace: Trace) -> Finding | None:
    got = batch_ratios(trace)
    if got is None:
        return None
    ids, ratio, how = got
    ok = np.isfinite(ratio)
    if ok.sum() < 20:
        return None
    ids, ratio = ids[ok], ratio[ok]
    start = M.persistent_onset(ratio >= RATIO, min_frac=SHARE, min_rows=max(10, len(ratio) // 10))
    if start < 0:
        return None
    b = _batch_rows(trace) or 1
    typical = float(np.median(ratio[start:]))
    sev = "error" if typical >= 0.25 * b else "warning"
    s0 = int(trace.steps[ids[start]])
    share = float(np.mean(ratio[start:] >= RATIO))
    what = (f"{share:.0%} of the batches from step {s0} on differ from the run's overall "
            + ("class mix" if how == "class" else "target distribution")
            + f" far more than random batches of {b} can: typically {fmt(typical)}x the chi-square a "
            "shuffled batch shows (≈ 1)")
    what += _composition(trace, ids[start:]) if how == "class" else ""
    loss = context(trace).loss
    saw = M.nanpercentile(loss[ids[start]:], 90) / M.nanpercentile(loss[ids[start]:], 10)
    if np.isfinite(saw):
        what += f"; the loss saws with the order (its 90th percentile is {fmt(saw)}x its 10th)"
    return Finding(
        code=CODE, kind="cause", severity=sev, confidence=0.85 if sev == "error" else 0.7,
        steps=[s0, int(trace.steps[-1])], layer=None,
        title=("Batches are sorted by class: the data is not shuffled" if how == "class"
               else "Batches are ordered by target value: the data is not shuffled"),
        evidence=what,
        fix=("shuffle the training data: DataLoader(dataset, shuffle=True) (or RandomSampler, or "
             "DistributedSampler(shuffle=True) with sampler.set_epoch(epoch)); shuffle once after "
             "concatenating per-class or sorted sources; for streaming data, use a shuffle buffer"),
        marks={"onset": s0, "lane": "loss", "views": ["timeline", "outputs"]},
    )


def _composition(trace: Trace, rows: np.ndarray) -> str:
    rows = rows[:2000]
    h = np.asarray(D.read(trace, "targets", "class_hist", np.unique(rows)), dtype=np.float64)
    n_b = h.sum(axis=1)
    top = np.nanmax(h, axis=1) / np.where(n_b > 0, n_b, np.nan)
    g = np.nansum(h, axis=0)
    overall = float(g.max() / g.sum()) if g.sum() > 0 else float("nan")
    return (f"; the typical batch has {float(M.nanmedian(top)):.0%} of its labels from one class, against "
            f"{overall:.0%} for the most common class overall")
