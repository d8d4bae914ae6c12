"""What the timeline plots, computed once per run off the UI thread (numpy only, no Qt).

``compute_series(trace)`` reads the per-step curves (loss, learning rate, global
gradient norm, logged scalars); ``nonfinite_events(trace)`` finds every step where
something in the trace went NaN/Inf. ``ema`` is TensorBoard's debiased smoothing.
On a big trace the file opens with ``compute_series(trace, grad_norm=False)`` (the
1-D curves, milliseconds) and the ``(N, P)`` reduction of the grad-norm lane follows
in a worker job (``RunSeries.partial`` until then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.trace import Trace

_BLOCK = 8192  # rows per chunk for (N, P) reductions: bounded temporary memory
BIG_CELLS = 20_000_000  # rows × parameters above which the grad-norm lane is a follow-up job


@dataclass
class Series:
    """One plotted curve: global steps ``x`` and values ``y`` (float64, NaN/Inf kept)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    lane: str
    measured: bool = False  # only some rows were measured: drawn as points, never joined

    def value_at(self, step: int) -> tuple[float, float] | None:
        """Value at the last logged step ≤ ``step`` and its delta from the previous one."""
        i = int(np.searchsorted(self.x, step, side="right")) - 1
        if i < 0:
            return None
        prev = float(self.y[i - 1]) if i > 0 else float("nan")
        return float(self.y[i]), float(self.y[i]) - prev

    def nonfinite(self) -> np.ndarray:
        """Steps where the value is NaN or ±Inf."""
        return self.x[~np.isfinite(self.y)]


@dataclass
class RunSeries:
    """Everything the timeline draws for one run, grouped into lanes (lane name → series)."""

    series: list[Series]
    events: dict[str, np.ndarray] = field(default_factory=dict)  # kind → steps (NaN/Inf…)
    n_rows: int = 0
    partial: bool = False  # the grad-norm lane is still being computed (a worker job follows)

    def lanes(self) -> dict[str, list[Series]]:
        out: dict[str, list[Series]] = {}
        for s in self.series:
            out.setdefault(s.lane, []).append(s)
        return out

    def get(self, name: str) -> Series | None:
        return next((s for s in self.series if s.name == name), None)


def global_grad_norm(g_norm: np.ndarray) -> np.ndarray:
    """``(N,)`` ‖g‖ over all parameters = sqrt(Σ_p g_norm²), ignoring NaN (no grad); all-NaN → NaN."""
    n = len(g_norm)
    out = np.full(n, np.nan)
    for i in range(0, n, _BLOCK):
        block = np.array(g_norm[i:i + _BLOCK], dtype=np.float64)
        if block.ndim == 1:
            block = block[:, None]
        nan = np.isnan(block)
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(block, block, out=block)
        block[nan] = 0.0
        has = ~nan.all(axis=1) if block.shape[1] else np.zeros(len(block), bool)
        out[i:i + len(block)] = np.where(has, np.sqrt(block.sum(axis=1)), np.nan)
    return out


def _grad_norm(trace: Trace, previous: RunSeries | None) -> np.ndarray | None:
    if not trace.param_names or not trace.has("params/g_norm"):
        return None
    old = previous.get("grad norm") if previous is not None else None
    n = trace.n_steps
    if old is not None and 0 < len(old.y) <= n:  # live growth: reduce only the new rows
        if len(old.y) == n:
            return old.y
        new = global_grad_norm(trace.stat_block("params", "g_norm", slice(len(old.y), n)))
        return np.concatenate([old.y, new])
    return global_grad_norm(_Rows(trace, "params", "g_norm"))


class _Rows:
    """``(N, P)`` statistic read block by block (``len`` and row slices), never cached whole."""

    def __init__(self, trace: Trace, group: str, stat: str) -> None:
        self.trace, self.group, self.stat = trace, group, stat

    def __len__(self) -> int:
        return self.trace.n_steps

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.trace.stat_block(self.group, self.stat, rows)


def is_big(trace: Trace) -> bool:
    """Whether the grad-norm lane of ``trace`` is worth a follow-up job (rows × parameters)."""
    return trace.n_steps * max(len(trace.param_names), 1) > BIG_CELLS


def compute_series(trace: Trace, previous: RunSeries | None = None, grad_norm: bool = True) -> RunSeries:
    """The timeline's curves: loss, LR per param group, global grad norm and logged scalars.

    With ``previous`` (the same run before new rows arrived), only new rows of the
    ``(N, P)`` gradient norms are read. ``grad_norm=False`` leaves that lane out (the
    result is ``partial`` when the trace has one): the fast first paint of a big trace.
    """
    steps = np.asarray(trace.steps, dtype=np.int64)
    out = [Series("loss", steps, trace.loss().astype(np.float64), "loss")]
    lr = trace.lr()
    if lr.shape[1] and not np.isnan(lr).all():
        for g in range(lr.shape[1]):
            name = "lr" if lr.shape[1] == 1 else f"lr[{g}]"
            out.append(Series(name, steps, lr[:, g].astype(np.float64), "learning rate"))
    has_gn = bool(trace.param_names) and trace.has("params/g_norm")
    gn = _grad_norm(trace, previous) if grad_norm else None
    if gn is not None and not np.isnan(gn).all():
        # Rows the recorder's budget did not measure are absent, not NaN values of the run.
        rows = trace.measured("params")
        rows = rows if len(rows) == len(gn) else np.ones(len(gn), bool)
        out.append(Series("grad norm", steps[rows], gn[rows], "grad norm", measured=not rows.all()))
    for name in trace.scalar_names():
        x, y = trace.scalar(name)
        order = np.argsort(x, kind="stable")
        lane = "loss" if "loss" in name.lower() else name
        out.append(Series(name, x[order], y[order], lane))
    rs = RunSeries(out, n_rows=trace.n_steps, partial=has_gn and not grad_norm)
    if previous is not None:
        rs.events.update(previous.events)
    rs.events["nonfinite"] = np.unique(np.concatenate([s.nonfinite() for s in out]))
    return rs


def series_of(run: Any) -> RunSeries:
    """The run's cached ``RunSeries`` (``run.series``), extended when the trace grew."""
    rs = getattr(run, "series", None)
    if rs is None or rs.n_rows != run.trace.n_steps:
        rs = compute_series(run.trace, previous=rs)
        run.series = rs
    return rs


def nonfinite_events(trace: Trace) -> np.ndarray:
    """Steps where any parameter, gradient, activation or output held NaN/Inf (O(N·P): a worker job)."""
    n = trace.n_steps
    bad = np.zeros(n, bool)
    sources = [("params", s) for s in ("w_nonfinite", "g_nonfinite")]
    sources += [("modules", "a_nonfinite")]
    for group, stat in sources:
        if not trace.has(f"{group}/{stat}"):
            continue
        for i in range(0, n, _BLOCK):
            block = trace.stat_block(group, stat, slice(i, i + _BLOCK))
            bad[i:i + len(block)] |= np.nansum(np.asarray(block, np.float64).reshape(len(block), -1), 1) > 0
    for group in ("outputs", "inputs", "targets"):
        if trace.has(f"{group}/nonfinite"):
            bad |= np.nan_to_num(trace.batch(group, "nonfinite").astype(np.float64)) > 0
    bad |= ~np.isfinite(trace.loss())
    return np.asarray(trace.steps)[bad]


def ema(y: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased EMA: s_k = w·s_{k-1} + (1−w)·v_k over finite values, ÷ (1 − w^k).

    Non-finite values are passed through unchanged and do not enter the average.
    """
    y = np.asarray(y, dtype=np.float64)
    out = y.copy()
    finite = np.isfinite(y)
    v = y[finite]
    if not len(v) or weight <= 0:
        return out
    w = min(float(weight), 0.999999)
    # Chunks short enough that w**-k stays finite: s_t = w^t s_0 + (1-w) Σ_k w^(t-k) v_k.
    block = max(int(600 / max(-np.log(w), 1e-12)), 1)
    block = min(block, 65536)
    res = np.empty_like(v)
    last = 0.0
    for i in range(0, len(v), block):
        chunk = v[i:i + block]
        k = np.arange(1, len(chunk) + 1, dtype=np.float64)
        wp = w ** k
        scaled = np.cumsum(chunk * (1 - w) / wp)
        res[i:i + len(chunk)] = wp * (last + scaled)
        last = float(res[i + len(chunk) - 1])
    count = np.arange(1, len(v) + 1, dtype=np.float64)
    debias = 1.0 - w ** count
    out[finite] = res / np.where(debias > 0, debias, 1.0)
    return out


# ----------------------------------------------------------------------------- any recorded series
PER_STEP_BATCH = {  # the (N,) fields of the batch summaries (the others are per class / feature / row)
    "outputs": ("row_sum_mean", "row_sum_std", "min", "max", "frac_in_01", "softmax_maxprob", "nonfinite"),
    "targets": ("mean", "std", "min", "max", "nonfinite"),
    "inputs": ("mean", "std", "maxabs", "nonfinite"),
}
COMPANION = {"g": "g_nonfinite", "w": "w_nonfinite", "u": "w_nonfinite", "a": "a_nonfinite"}
PARAM_STATS = ("g_norm", "g_maxabs", "g_zero_frac", "g_nonfinite", "update_ratio",
               "w_norm", "w_mean", "w_std", "w_maxabs", "w_nonfinite")
MODULE_STATS = ("a_mean", "a_std", "a_maxabs", "a_zero_frac", "a_sat_frac", "a_dead_frac", "a_nonfinite")


@dataclass(frozen=True)
class SeriesRef:
    """A recorded per-step series: ``group/stat`` (``column`` names the parameter or module)."""

    group: str  # "params" | "modules" | "outputs" | "targets" | "inputs"
    stat: str
    column: str | None = None

    @property
    def label(self) -> str:
        return f"{self.column} · {self.stat}" if self.column else f"{self.group} · {self.stat}"


def recorded_series(trace: Trace) -> dict[str, list[SeriesRef]]:
    """Every per-step series in the trace, grouped for the metric tree (``"params · g_norm"`` → refs)."""
    out: dict[str, list[SeriesRef]] = {}
    for group, stats, names in (("params", PARAM_STATS, trace.param_names),
                                ("modules", MODULE_STATS, trace.module_names)):
        for stat in stats:
            if names and trace.has(f"{group}/{stat}"):
                out[f"{group} · {stat}"] = [SeriesRef(group, stat, n) for n in names]
    for group, fields in PER_STEP_BATCH.items():
        refs = [SeriesRef(group, f) for f in fields if trace.has(f"{group}/{f}")]
        if refs:
            out[group] = refs
    return out


def read_series(trace: Trace, ref: SeriesRef) -> Series:
    """The measured points of ``ref``: rows where the value was not measured (NaN with no
    non-finite count behind it, e.g. a budgeted statistic between its measured rows) are dropped,
    so nothing is interpolated; a real NaN/Inf stays (and is drawn as a marker)."""
    steps = np.asarray(trace.steps, dtype=np.int64)
    if ref.column is None:
        y = np.asarray(trace.batch(ref.group, ref.stat), dtype=np.float64).reshape(len(steps), -1)[:, 0]
        return Series(ref.label, steps, y, ref.label)
    names = trace.param_names if ref.group == "params" else trace.module_names
    col = names.index(ref.column)
    cols = slice(col, col + 1)
    y = np.asarray(trace.stat_block(ref.group, ref.stat, slice(0, trace.n_steps), cols),
                   dtype=np.float64).reshape(-1)
    comp = COMPANION.get(ref.stat[0])
    nan = np.isnan(y)
    if nan.any() and comp and trace.has(f"{ref.group}/{comp}") and comp != ref.stat:
        bad = np.asarray(trace.stat_block(ref.group, comp, slice(0, trace.n_steps), cols),
                         dtype=np.float64).reshape(-1)
        keep = ~nan | (bad > 0)
        steps, y = steps[keep], y[keep]
    return Series(ref.label, steps[: len(y)], y, ref.label, measured=len(y) < trace.n_steps)
