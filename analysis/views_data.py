"""Display-side numbers for the app's views: pure numpy, no Qt.

The views only draw; what they draw is reduced here so it can be tested without a
display. ``ColumnPyramid`` summarises a ``(steps, layers)`` statistic at column
factors ``4**k`` (min, max and non-finite flags per cell), so a 100k-step heatmap
is drawn from a few hundred columns and a NaN anywhere is never averaged away. The
rest are small helpers: robust colour limits, symmetric limits, softmax, histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from analysis.trace import Trace

NAN_FLAG, POSINF_FLAG, NEGINF_FLAG = 1, 2, 4
REDUCERS = ("maxabs", "max", "min")


@dataclass(frozen=True)
class Metric:
    """A heatmap statistic: the ``stats`` of ``group`` summed, and how it is coloured."""

    label: str
    group: str  # "params" or "modules"
    stats: tuple[str, ...]  # summed
    log: bool = False
    levels: str = "robust"  # robust | symmetric | unit | count
    companion: str | None = None  # non-finite count telling a NaN value from "not recorded"


_ACT_BAD = "a_nonfinite"
METRICS: dict[str, Metric] = {
    "g_norm": Metric("gradient norm", "params", ("g_norm",), log=True, companion="g_nonfinite"),
    "w_norm": Metric("weight norm", "params", ("w_norm",), log=True, companion="w_nonfinite"),
    "update_ratio": Metric("update ratio", "params", ("update_ratio",), log=True, companion="w_nonfinite"),
    "a_std": Metric("activation std", "modules", ("a_std",), log=True, companion=_ACT_BAD),
    "a_mean": Metric("activation mean", "modules", ("a_mean",), levels="symmetric", companion=_ACT_BAD),
    "a_maxabs": Metric("activation max |x|", "modules", ("a_maxabs",), log=True, companion=_ACT_BAD),
    "a_dead_frac": Metric("dead fraction", "modules", ("a_dead_frac",), levels="unit", companion=_ACT_BAD),
    "a_sat_frac": Metric("saturated fraction", "modules", ("a_sat_frac",), levels="unit", companion=_ACT_BAD),
    "p_nonfinite": Metric("NaN/Inf count (weights + grads)", "params", ("g_nonfinite", "w_nonfinite"),
                          levels="count"),
    "a_nonfinite": Metric("NaN/Inf count (activations)", "modules", ("a_nonfinite",), levels="count"),
}


def nonfinite_flags(a: np.ndarray) -> np.ndarray:
    """Bit flags per element, same shape as ``a``: 1 NaN, 2 +Inf, 4 −Inf, 0 finite. uint8."""
    a = np.asarray(a)
    flags = np.zeros(a.shape, np.uint8)
    bad = ~np.isfinite(a)
    if bad.any():
        v = a[bad]
        flags[bad] = np.where(np.isnan(v), NAN_FLAG, np.where(v > 0, POSINF_FLAG, NEGINF_FLAG))
    return flags


def _finite_or_nan(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    finite = np.isfinite(a)
    return a if finite.all() else np.where(finite, a, np.float32(np.nan))


def _fold(a: np.ndarray, factor: int, fill: float | int) -> np.ndarray:
    """View ``(n, L)`` as ``(ceil(n/f), f, L)``, padding the last bin with ``fill``."""
    n = a.shape[0]
    pad = (-n) % factor
    if pad:
        a = np.concatenate([a, np.full((pad,) + a.shape[1:], fill, a.dtype)])
    return a.reshape(-1, factor, *a.shape[1:])


def reduce_rows(lo: np.ndarray, hi: np.ndarray, flags: np.ndarray, factor: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge every ``factor`` rows: min of ``lo``, max of ``hi`` (NaN ignored), OR of flags."""
    return (np.fmin.reduce(_fold(lo, factor, np.nan), axis=1),
            np.fmax.reduce(_fold(hi, factor, np.nan), axis=1),
            np.bitwise_or.reduce(_fold(flags, factor, 0), axis=1))


def pick(lo: np.ndarray, hi: np.ndarray, reducer: str = "maxabs") -> np.ndarray:
    """One value per cell from its min/max: ``max``, ``min`` or the signed max-|x| (``maxabs``)."""
    if reducer == "max":
        return hi
    if reducer == "min":
        return lo
    if reducer != "maxabs":
        raise ValueError(f"unknown reducer {reducer!r}; one of {REDUCERS}")
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(lo) > np.abs(hi), lo, hi)


class ColumnPyramid:
    """Min/max/non-finite summary of an ``(N, L)`` statistic, ``factor**k`` rows per cell.

    ``read(start, stop)`` returns rows ``start:stop`` as an ``(stop-start, L)`` array, or
    as ``(array, missing)`` where the bool mask ``missing`` marks NaN cells that mean "not
    recorded" rather than a numerical NaN (those are left unflagged). It is called in
    blocks once (and again for appended rows in ``extend``). Level 0 is never stored:
    ``window(0, …)`` reads it. A strided sample of raw values is kept for colour limits.
    A cell whose value is NaN and whose flags are 0 holds no data.
    """

    def __init__(self, read: Callable[[int, int], np.ndarray], n_rows: int, n_cols: int,
                 factor: int = 4, block: int = 16384, min_columns: int = 64,
                 sample_size: int = 1_000_000) -> None:
        self._read = read
        self.factor = factor
        self.n_cols = n_cols
        self.n_rows = 0
        self._block = max(block // factor, 1) * factor
        self._min_columns = min_columns
        self._stride = max(1, (n_rows * max(n_cols, 1)) // sample_size)
        self._sample = np.zeros((0, n_cols), np.float32)
        self._sample_rows = np.zeros(0, np.int64)
        self.levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # levels[k-1]: factor**k
        self.extend(n_rows)

    def rebind(self, read: Callable[[int, int], np.ndarray]) -> None:
        """Read raw rows through ``read`` from now on (the same data, reopened)."""
        self._read = read

    @property
    def n_levels(self) -> int:
        """Levels available, raw included."""
        return len(self.levels) + 1

    def cell_rows(self, level: int) -> int:
        return self.factor ** level

    def n_columns(self, level: int) -> int:
        return -(-self.n_rows // self.cell_rows(level))

    def extend(self, n_rows: int) -> None:
        """Take in rows up to ``n_rows`` (a live run grew); rebuilds only the tail."""
        if n_rows <= self.n_rows and self.levels:
            return
        f = self.factor
        start = (self.n_rows // f) * f
        keep = start // f
        parts = []
        for a in range(start, n_rows, self._block):
            clean, flags = self._raw(a, min(a + self._block, n_rows))
            parts.append(reduce_rows(clean, clean, flags, f))
            self._add_sample(a, clean)
        empty = (np.zeros((0, self.n_cols), np.float32), np.zeros((0, self.n_cols), np.float32),
                 np.zeros((0, self.n_cols), np.uint8))
        old = self.levels[0] if self.levels else empty
        level1 = tuple(np.concatenate([old[i][:keep]] + [p[i] for p in parts]) for i in range(3))
        self.n_rows = max(n_rows, self.n_rows)
        self.levels = [level1]
        while len(self.levels[-1][0]) > self._min_columns:
            self.levels.append(reduce_rows(*self.levels[-1], f))

    def _raw(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``a:b`` as ``(values with NaN for every non-finite or missing cell, flags)``."""
        got = self._read(a, b)
        raw, missing = got if isinstance(got, tuple) else (got, None)
        raw = np.asarray(raw, dtype=np.float32).reshape(max(b - a, 0), self.n_cols)
        flags = nonfinite_flags(raw)
        if missing is not None:  # NaN that means "no value here" is not evidence of a NaN
            flags[np.asarray(missing, bool) & np.isnan(raw)] = 0
        return _finite_or_nan(raw), flags

    def _add_sample(self, start: int, clean: np.ndarray) -> None:
        rows = np.arange(start, start + len(clean))
        take = rows % self._stride == 0
        keep = self._sample_rows < start
        self._sample = np.concatenate([self._sample[keep], clean[take]])
        self._sample_rows = np.concatenate([self._sample_rows[keep], rows[take]])

    def sample(self, cols: np.ndarray | None = None) -> np.ndarray:
        """Raw values of every ``stride``-th row (all rows for small traces), ``(k, L)``."""
        return self._sample if cols is None else self._sample[:, cols]

    def level_for(self, span_rows: float, pixels: int) -> int:
        """The finest level whose cells are at least one pixel wide over ``span_rows`` rows."""
        pixels = max(int(pixels), 1)
        for k in range(self.n_levels):
            if span_rows / self.cell_rows(k) <= pixels:
                return k
        return self.n_levels - 1

    def window(self, level: int, c0: int, c1: int, reducer: str = "maxabs"
               ) -> tuple[np.ndarray, np.ndarray]:
        """Columns ``c0:c1`` of ``level``: ``(values (c1-c0, L) float32, flags uint8)``."""
        c0, c1 = max(c0, 0), min(c1, self.n_columns(level))
        if level == 0:
            return self._raw(c0, c1)
        lo, hi, flags = self.levels[level - 1]
        return pick(lo[c0:c1], hi[c0:c1], reducer), flags[c0:c1]

    def value_at(self, row: int, col: int) -> float:
        """The exact stored value at one row and column."""
        got = self._read(row, row + 1)
        raw = got[0] if isinstance(got, tuple) else got
        return float(np.asarray(raw, dtype=np.float64).reshape(-1, self.n_cols)[0, col])


# ----------------------------------------------------------------------------- colour limits
def log10_display(values: np.ndarray) -> np.ndarray:
    """``log10(x)`` for ``x > 0``; zero and negative values become −Inf, NaN stays NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.where(values > 0, values, 0.0))
    return np.where(np.isnan(values), np.nan, out).astype(np.float32)


def robust_levels(values: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> tuple[float, float]:
    """``(lo, hi)`` percentiles of the finite values; widened when flat, ``(0, 1)`` when empty."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, [lo_pct, hi_pct]))
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        pad = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - pad, hi + pad
    return lo, hi


def symmetric_limit(values: np.ndarray) -> float:
    """``max |x|`` over the finite values (1 when there are none or all are 0)."""
    v = np.asarray(values, dtype=np.float64)
    v = np.abs(v[np.isfinite(v)])
    m = float(v.max()) if v.size else 0.0
    return m if m > 0 else 1.0


def symmetric_levels(values: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> tuple[float, float]:
    """Robust levels made symmetric about 0 (for signed statistics on a diverging map)."""
    lo, hi = robust_levels(values, lo_pct, hi_pct)
    m = max(abs(lo), abs(hi))
    return -m, m


# ----------------------------------------------------------------------------- tensors
def matrix_2d(a: np.ndarray) -> np.ndarray:
    """A snapshot as a matrix ``(shape[0], prod(rest))``; 1-D and 0-D as one row."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(a.shape[0], -1)


def hist_edges(value_range: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges ``linspace(min, max, bins + 1)``; a flat or missing range gets a unit span."""
    lo, hi = (float(x) for x in np.asarray(value_range, dtype=np.float64)[:2])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return np.linspace(lo, hi, bins + 1)


def row_at_or_before(steps: np.ndarray, step: int) -> int | None:
    """Index of the last entry of sorted ``steps`` ≤ ``step`` (0 before the first; None if empty)."""
    if not len(steps):
        return None
    return max(int(np.searchsorted(steps, step, side="right")) - 1, 0)


def window_at(window_ends: np.ndarray, step: int) -> int | None:
    """Index of the liveness window holding ``step`` (windows are named by their last step)."""
    if not len(window_ends):
        return None
    return min(int(np.searchsorted(window_ends, step, side="left")), len(window_ends) - 1)


def dead_units(alive: np.ndarray, window: int) -> np.ndarray:
    """Indices of the units that never fired in ``window`` of a ``(W, U)`` liveness array."""
    return np.flatnonzero(np.asarray(alive)[window] == 0)


# ----------------------------------------------------------------------------- outputs
def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``; rows holding NaN/Inf come out NaN."""
    x = np.asarray(logits, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        z = x - np.max(x, axis=axis, keepdims=True)
        e = np.exp(z)
        out = e / np.sum(e, axis=axis, keepdims=True)
    bad = ~np.isfinite(x).all(axis=axis, keepdims=True)
    return np.where(bad, np.nan, out)


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    """``(R, classes)`` float32 one-hot rows of integer labels; out-of-range or NaN rows stay 0."""
    idx = np.asarray(indices, dtype=np.float64).reshape(-1)
    out = np.zeros((len(idx), classes), np.float32)
    ok = np.isfinite(idx) & (idx >= 0) & (idx < classes)
    out[np.flatnonzero(ok), idx[ok].astype(np.int64)] = 1.0
    return out


def top_class(counts: np.ndarray) -> tuple[int, float]:
    """``(class, share)`` of the most frequent class in a count vector (``(-1, nan)`` if empty)."""
    c = np.asarray(counts, dtype=np.float64)
    c = np.where(np.isfinite(c), c, 0.0)
    total = c.sum()
    if not c.size or total <= 0:
        return -1, float("nan")
    k = int(np.argmax(c))
    return k, float(c[k] / total)


def maxprob_hist(probs: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of each row's max probability over ``[0, 1]``: ``(counts, edges)``."""
    p = np.asarray(probs, dtype=np.float64)
    m = np.max(p, axis=-1) if p.size else np.zeros(0)
    m = m[np.isfinite(m)]
    return np.histogram(np.clip(m, 0.0, 1.0), bins=bins, range=(0.0, 1.0))


def mean_maxprob(probs: np.ndarray) -> float:
    """Mean over rows of the row's max probability (NaN rows skipped)."""
    p = np.asarray(probs, dtype=np.float64)
    m = np.max(p, axis=-1) if p.size else np.zeros(0)
    m = m[np.isfinite(m)]
    return float(m.mean()) if m.size else float("nan")


# ----------------------------------------------------------------------------- traces
SMALL_TRACE = 4_000_000  # cells; below this the reader's cached full columns are used


def stat_reader(trace: Trace, group: str, stats: tuple[str, ...], companion: str | None = None
                ) -> Callable[[int, int], np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """``read(start, stop)`` of the sum of ``group/stat`` columns (NaN where a stat is missing).

    With ``companion`` (a non-finite count such as ``g_nonfinite``), NaN cells where the
    companion is 0 are returned as missing (``(values, missing)``): e.g. ``update_ratio`` on
    rows where it was not measured, ``a_sat_frac`` of an unbounded module.
    """
    n_cols = len(trace.param_names if group == "params" else trace.module_names)
    full = trace.n_steps * max(n_cols, 1) <= SMALL_TRACE
    present = [s for s in stats if trace.has(f"{group}/{s}")]
    companion = companion if companion and trace.has(f"{group}/{companion}") else None

    def one(stat: str, a: int, b: int) -> np.ndarray:
        if full:
            arr = trace.param_stat(stat) if group == "params" else trace.module_stat(stat)
            return np.asarray(arr[a:b], dtype=np.float32)
        return np.asarray(trace.stat_block(group, stat, slice(a, b)), dtype=np.float32)

    def read(a: int, b: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        if not present:
            return np.full((b - a, n_cols), np.nan, np.float32), np.ones((b - a, n_cols), bool)
        out = one(present[0], a, b)
        for stat in present[1:]:
            out = out + one(stat, a, b)
        nan = np.isnan(out)
        if companion is None or not nan.any():
            return out
        return out, nan & ~(one(companion, a, b) > 0)

    return read


def pyramid_for(trace: Trace, group: str, stats: tuple[str, ...], n_rows: int | None = None,
                companion: str | None = None) -> ColumnPyramid:
    """The column pyramid of a params/modules statistic (several stats are summed)."""
    n_cols = len(trace.param_names if group == "params" else trace.module_names)
    n = trace.n_steps if n_rows is None else n_rows
    return ColumnPyramid(stat_reader(trace, group, stats, companion), n, n_cols)


def layer_rows(trace: Trace, group: str, layer: str) -> list[int]:
    """Rows of ``group`` (``params`` or ``modules``) that show ``layer`` (a parameter or module name).

    A module maps to its parameters (and a parent module to all of its descendants'); a
    parameter maps to its owning leaf module.
    """
    if not layer:
        return []
    if group == "params":
        names = trace.param_names
        if layer in names:
            return [names.index(layer)]
        return [i for i, info in enumerate(trace.param_info)
                if info["module"] == layer or info["module"].startswith(layer + ".")]
    names = trace.module_names
    if layer in names:
        return [names.index(layer)]
    owner = {info["name"]: info["module"] for info in trace.param_info}.get(layer)
    if owner is not None:
        return [names.index(owner)] if owner in names else []
    return [i for i, name in enumerate(names) if name.startswith(layer + ".")]


def module_params(trace: Trace, module: str) -> list[int]:
    """Indices of the parameters owned by leaf module ``module``."""
    return [i for i, info in enumerate(trace.param_info) if info["module"] == module]


def finite_std(values: np.ndarray) -> float:
    """Population std of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.std()) if v.size else float("nan")


def stat_at(trace: Trace, group: str, stat: str, row: int, col: int) -> float:
    """One value of a params/modules statistic (NaN when the trace lacks it)."""
    if not trace.has(f"{group}/{stat}"):
        return float("nan")
    n_cols = len(trace.param_names if group == "params" else trace.module_names)
    if trace.n_steps * max(n_cols, 1) <= SMALL_TRACE:
        arr = trace.param_stat(stat) if group == "params" else trace.module_stat(stat)
        return float(arr[row, col])
    return float(np.asarray(trace.stat_block(group, stat, slice(row, row + 1), slice(col, col + 1))).flat[0])


def drop_padding_rows(out: np.ndarray, tgt: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop sampled rows that are padding (batch smaller than the sample): NaN in outputs and targets.

    A row whose outputs are NaN but whose target is known is a real non-finite output and stays.
    """
    empty = ~np.isfinite(out).any(axis=-1)
    if tgt is not None:
        empty &= ~np.isfinite(tgt.reshape(len(tgt), -1)).any(axis=-1)
    if not empty.any() or empty.all():
        return out, tgt
    keep = ~empty
    return out[keep], None if tgt is None else tgt[keep]


def to_probabilities(out: np.ndarray) -> np.ndarray:
    """Rows as probabilities: as they are when they already are (in [0, 1], summing to 1), else softmax.

    Outputs recorded after a Softmax layer must not be squashed a second time for display.
    """
    finite = out[np.isfinite(out)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        sums = np.nansum(out, axis=-1)
        if np.all(np.abs(sums[np.isfinite(out).any(axis=-1)] - 1.0) < 1e-3):
            return out
    return softmax(out)


# ----------------------------------------------------------------------------- linked views
def rows_to_steps(steps: np.ndarray, x0: float, x1: float) -> tuple[float, float]:
    """A window in row coordinates (the heatmap's x) as steps; linear beyond the ends. O(1)."""
    steps = np.asarray(steps)
    return _row_to_step(steps, x0), _row_to_step(steps, x1)


def steps_to_rows(steps: np.ndarray, a: float, b: float) -> tuple[float, float]:
    """A window in steps as row coordinates (inverse of ``rows_to_steps``). O(log N), no copy
    of ``steps`` (it is called on every linked zoom frame of a million-row trace)."""
    steps = np.asarray(steps)
    return _step_to_row(steps, a), _step_to_row(steps, b)


def _row_to_step(steps: np.ndarray, r: float) -> float:
    n, r = len(steps), float(r)
    if n < 2:
        return (float(steps[0]) if n else 0.0) + r
    if not np.isfinite(r):
        return r
    i = int(min(max(np.floor(r), 0), n - 2))
    s0, s1 = float(steps[i]), float(steps[i + 1])
    return s0 + (r - i) * (s1 - s0)


def _step_to_row(steps: np.ndarray, v: float) -> float:
    n, v = len(steps), float(v)
    if n < 2:
        return v - (float(steps[0]) if n else 0.0)
    if not np.isfinite(v):
        return v
    if v <= float(steps[0]):
        i = 0
    elif v >= float(steps[-1]):
        i = n - 2
    else:  # an integer key: a float one would convert the whole array first
        key = steps.dtype.type(np.floor(v)) if steps.dtype.kind in "iu" else v
        i = int(min(max(int(np.searchsorted(steps, key, side="right")) - 1, 0), n - 2))
    s0, s1 = float(steps[i]), float(steps[i + 1])
    return i + (v - s0) / (s1 - s0)


# ----------------------------------------------------------------------------- heatmap rows
def finding_rows(trace: Trace, group: str, findings: Iterable[object]) -> list[int]:
    """Rows of ``group`` named by any finding (its ``layer`` and its ``marks["layers"]``), sorted."""
    out: set[int] = set()
    for f in findings:
        names = [getattr(f, "layer", None)] + list((getattr(f, "marks", None) or {}).get("layers", []))
        for name in names:
            if isinstance(name, str) and name:
                out.update(layer_rows(trace, group, name))
    return sorted(out)


def order_by_value(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``rows`` sorted by ``values[rows]`` largest first (by |x| for signed data); NaN/no value last."""
    rows = np.asarray(rows, np.int64)
    v = np.asarray(values, np.float64)[rows]
    key = np.where(np.isfinite(v), np.abs(v) if (v[np.isfinite(v)] < 0).any() else v, -np.inf)
    key = np.where(np.isposinf(v) | np.isneginf(v), np.inf, key)
    key = np.where(np.isnan(v), -np.inf, key)
    return rows[np.argsort(-key, kind="stable")]


def row_groups(positions: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs of display positions as ``(first, last)`` pairs (for one outline per run)."""
    p = sorted(set(int(x) for x in positions))
    out: list[tuple[int, int]] = []
    for x in p:
        if out and x == out[-1][1] + 1:
            out[-1] = (out[-1][0], x)
        else:
            out.append((x, x))
    return out


# ----------------------------------------------------------------------------- compare runs
def _split(got: np.ndarray | tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    raw, missing = got if isinstance(got, tuple) else (got, None)
    raw = np.asarray(raw, np.float32)
    return raw, np.zeros(raw.shape, bool) if missing is None else np.asarray(missing, bool)


def diff_reader(trace_b: Trace, trace_a: Trace, metric: Metric, log: bool
                ) -> Callable[[int, int], tuple[np.ndarray, np.ndarray]]:
    """``read(start, stop)`` over rows of run B of ``B − A`` (or ``log10(B / A)`` with ``log``).

    Runs are aligned by global step and layers by name; a cell with no partner in A (another
    step, another layer), not measured in either, or with a log of a value ≤ 0 is "missing".
    A real NaN/Inf on either side stays non-finite (it is evidence).
    """
    def names(t: Trace) -> list[str]:
        return list(t.param_names if metric.group == "params" else t.module_names)

    names_a = {n: i for i, n in enumerate(names(trace_a))}
    col_a = np.array([names_a.get(n, -1) for n in names(trace_b)], np.int64)
    read_b = stat_reader(trace_b, metric.group, metric.stats, metric.companion)
    read_a = stat_reader(trace_a, metric.group, metric.stats, metric.companion)
    steps_a = np.asarray(trace_a.steps, np.int64)

    def read(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        vb, miss = _split(read_b(a, b))
        want = np.asarray(trace_b.steps[a:b], np.int64)
        rows = np.clip(np.searchsorted(steps_a, want), 0, max(len(steps_a) - 1, 0))
        ok = steps_a[rows] == want if len(steps_a) else np.zeros(len(want), bool)
        va = np.full(vb.shape, np.nan, np.float32)
        if ok.any():
            r0, r1 = int(rows[ok].min()), int(rows[ok].max()) + 1
            block, miss_a = _split(read_a(r0, r1))
            take, local = np.clip(col_a, 0, None), np.clip(rows - r0, 0, r1 - r0 - 1)
            va = block[local][:, take]
            miss |= miss_a[local][:, take]
        miss |= ~ok[:, None] | (col_a < 0)[None, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if log:
                miss |= np.isfinite(vb) & np.isfinite(va) & ((vb <= 0) | (va <= 0))
                d = np.log10(vb) - np.log10(va)
            else:
                d = vb - va
        d = np.where(miss, np.nan, d).astype(np.float32)
        return d, miss

    return read


def diff_metric(metric: Metric, log: bool) -> Metric:
    """How a difference of ``metric`` is shown: signed, on a diverging map centred on 0."""
    label = f"log10 B/A of {metric.label}" if log else f"{metric.label}: B − A"
    return Metric(label, metric.group, metric.stats, log=False, levels="symmetric",
                  companion=metric.companion)
