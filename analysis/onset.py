"""Onsets: the row where a statistic departs from the run's own earlier behaviour (CONTRACT §3).

Every detector's ``steps[0]`` comes from here. The helpers take per-row series in which
NaN means "not measured on this row" (a budgeted cadence, a flight recorder that writes
full rows only around events, a statistic that went non-finite): NaN rows are skipped,
never read as zeros. Levels are compared in bins of the measured rows (bin medians are
robust to step noise), against the median of everything measured before (the run's own
earlier level), then refined to the first row of the departing bin that crosses.

- ``level_shift``: a persistent change by a factor (a gradient norm that grows 100×, a
  dead fraction that climbs), -1 when the series never leaves its early level;
- ``first_spike``: the first single row far above its local level (a bad batch);
- ``mask_onset``: the first row from which a boolean evidence mask holds on most of the
  measured rows that follow;
- ``from_start``: whether a found row is still inside the run's first steps (the fault
  acts from the start: report step 0).
"""

from __future__ import annotations

import numpy as np

from analysis.metrics import as_float, binned, quiet

BINS = 200
MIN_BASE_BINS = 2


def _measured(x: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, values)`` of the measured rows (finite; positive when ``log``), values logged."""
    a = as_float(x).ravel()
    ok = np.isfinite(a) & (a > 0) if log else np.isfinite(a)
    rows = np.flatnonzero(ok)
    vals = np.log10(a[rows]) if log else a[rows]
    return rows, vals


def _expanding_median(b: np.ndarray) -> np.ndarray:
    """``out[k]`` = median of the finite ``b[:k]`` (NaN for k = 0 or none finite)."""
    out = np.full(len(b), np.nan)
    for k in range(1, len(b)):
        prev = b[:k]
        prev = prev[np.isfinite(prev)]
        if len(prev):
            out[k] = np.median(prev)
    return out


@quiet
def level_shift(x: np.ndarray, factor: float, *, direction: str = "up", log: bool = True,
                persist: float = 0.6, start: int = 0, bins: int = BINS) -> int:
    """First row where ``x`` leaves its earlier level by ``factor`` and stays there; -1 if never.

    With ``log`` (positive quantities: norms, ratios) ``factor`` is multiplicative (10 =
    ten times the earlier level); without it, an absolute difference (fractions). The
    departure must hold on ``persist`` of the measured bins from there to the end. Rows
    before ``start`` are ignored (e.g. the rows after a NaN).
    """
    rows, vals = _measured(x, log)
    keep = rows >= start
    rows, vals = rows[keep], vals[keep]
    if len(vals) < 2 * MIN_BASE_BINS:
        return -1
    sign = 1.0 if direction == "up" else -1.0
    thr = np.log10(factor) if log else float(factor)
    n_bins = min(bins, len(vals))
    med = binned(vals, n_bins)
    edges = np.linspace(0, len(vals), n_bins + 1).astype(np.int64)
    base = _expanding_median(med)
    dep = sign * (med - base) >= thr
    dep[:MIN_BASE_BINS] = False
    for k in np.flatnonzero(dep):
        tail = sign * (med[k:] - base[k]) >= thr
        if tail.mean() >= persist:
            lo = edges[max(k - 1, 0)]
            seg = sign * (vals[lo:edges[k + 1]] - base[k]) >= thr
            j = lo + (int(np.argmax(seg)) if seg.any() else edges[k] - lo)
            return int(rows[j])
    return -1


@quiet
def first_spike(x: np.ndarray, factor: float, *, start: int = 0, window: int = 50) -> int:
    """First measured row ≥ ``start`` whose value is ≥ ``factor`` × the median of the
    ``window`` measured rows before it (positive quantities); -1 if none."""
    rows, vals = _measured(x, log=True)
    if len(vals) <= window // 5 + 1:
        return -1
    n = len(vals)
    # Median of the preceding `window` values: sliding windows over a NaN-padded copy.
    pad = np.concatenate([np.full(window, np.nan), vals])
    win = np.lib.stride_tricks.sliding_window_view(pad[:-1], window)
    local = np.nanmedian(win, axis=1) if n <= 20000 else _blocked_median(pad, window, n)
    have = np.arange(n) >= max(5, window // 5)
    hit = have & (rows >= start) & (vals - local >= np.log10(factor))
    return int(rows[np.argmax(hit)]) if hit.any() else -1


def _blocked_median(pad: np.ndarray, window: int, n: int) -> np.ndarray:
    """Local medians for long series: the median of the previous block of ``window`` values."""
    vals = pad[window:]
    blocks = np.arange(n) // window
    n_blocks = int(blocks[-1]) + 1
    grid = np.full((n_blocks, window), np.nan)
    grid.ravel()[: n] = vals
    med = np.nanmedian(grid, axis=1)
    prev = np.concatenate([[np.nan], med[:-1]])
    return prev[blocks]


def mask_onset(bad: np.ndarray, measured: np.ndarray | None = None, min_frac: float = 0.8) -> int:
    """First row from which ``bad`` holds on ≥ ``min_frac`` of the measured rows up to the end; -1.

    ``measured`` (default: all rows) marks rows where the evidence was looked at; rows not
    measured neither count for nor against.
    """
    b = np.asarray(bad, bool)
    m = np.ones(len(b), bool) if measured is None else np.asarray(measured, bool)
    rows = np.flatnonzero(m)
    if not len(rows):
        return -1
    v = b[rows]
    tail_true = np.cumsum(v[::-1])[::-1]
    tail_len = np.arange(len(v), 0, -1)
    ok = v & (tail_true >= min_frac * tail_len)
    return int(rows[np.argmax(ok)]) if ok.any() else -1


def from_start(row: int, n_rows: int, head: int = 10) -> bool:
    """Whether ``row`` lies in the run's first steps (the first ``head`` rows or 1 %)."""
    return 0 <= row <= max(head, n_rows // 100)


def onset_row(*candidates: int) -> int:
    """The earliest found (≥ 0) row of several candidates; 0 when none was found."""
    found = [int(c) for c in candidates if c is not None and c >= 0]
    return min(found) if found else 0


@quiet
def rise_above_best(x: np.ndarray, factor: float, *, bins: int = 100, persist: float = 0.6) -> int:
    """First row where positive ``x`` (a loss) climbs to ≥ ``factor`` × the best level its
    bin medians had reached before, and stays there (``persist`` of the later bins); -1 if never.

    A loss that goes non-finite for good counts as climbing from its first non-finite row.
    """
    a = as_float(x).ravel()
    n = len(a)
    if n < 8:
        return -1
    finite = np.isfinite(np.asarray(x, np.float64).ravel())
    tail_bad = np.flatnonzero(~finite)
    dead_from = int(tail_bad[0]) if len(tail_bad) and not finite[tail_bad[0]:].any() else n
    rows, vals = _measured(a[:dead_from], log=True)
    if len(vals) >= 8:
        n_bins = min(bins, len(vals) // 4)
        med = binned(vals, n_bins)
        edges = np.linspace(0, len(vals), n_bins + 1).astype(np.int64)
        best = np.concatenate([[np.nan], np.fmin.accumulate(med)[:-1]])
        thr = np.log10(factor)
        dep = med - best >= thr
        dep[:MIN_BASE_BINS] = False
        extra = 0 if dead_from == n else 1  # a loss non-finite for good counts as departed
        near = max(3, n_bins // 20)
        for k in np.flatnonzero(dep):
            tail = med[k:] - best[k] >= thr
            # it leaves for good here: held on most later bins, and on most of the next few
            # (a noisy bin before a late blow-up is not where the loss turned)
            soon = tail[:near].sum() + extra * (len(tail) < near)
            if (tail.sum() + extra) / (len(tail) + extra) >= persist and \
                    soon >= persist * min(near, len(tail) + extra):
                seg = vals[edges[max(k - 1, 0)]:edges[k + 1]] - best[k] >= thr
                j = edges[max(k - 1, 0)] + (int(np.argmax(seg)) if seg.any() else 0)
                return int(rows[j])
    return dead_from if dead_from < n else -1
