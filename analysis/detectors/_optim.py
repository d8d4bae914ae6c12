"""Trace-side facts shared by the optimisation / numerics detectors, computed once per trace.

``context(trace)`` returns an ``OptimContext`` whose cached properties read the
per-step statistics (thinned to a few thousand rows where a window statistic is
enough) and reduce them with ``analysis.metrics``. Detectors use these facts both
for their own verdict and to defer to a competing root cause (a learning rate that
is too high also explodes gradients and kills ReLUs; the root cause ranks first).
"""

from __future__ import annotations

import math
import weakref
from functools import cached_property
from typing import Any

import numpy as np

from analysis import metrics as M
from analysis.detectors._data import input_size
from analysis.metrics import LossProfile
from analysis.naming import module_label_at, param_label
from analysis.trace import Trace

EMBEDDING_TYPES = ("Embedding", "EmbeddingBag")
RECURRENT_TYPES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
RELU_TYPES = ("ReLU", "ReLU6")
# Squashing activations whose gradient vanishes at the bounds (ReLU6 is a Hardtanh subclass
# with bounds (0, 6), but its lower bound is a ReLU's zero: dead_relu's business).
SQUASH_TYPES = ("Tanh", "Sigmoid", "Hardtanh", "Hardsigmoid", "Softsign", "LogSigmoid", "Tanhshrink")
HEALTHY_UPDATE = 1e-3  # update/weight ratio of a well-tuned step (rule of thumb)
LARGE_INIT = 4.0  # weight std x sqrt(fan_in); PyTorch's default init gives 0.58, Kaiming 1.41
MAX_ROWS = 3000

_CACHE: weakref.WeakKeyDictionary[Trace, tuple[int, OptimContext]] = weakref.WeakKeyDictionary()


def context(trace: Trace) -> OptimContext:
    """The (cached) ``OptimContext`` of ``trace``; rebuilt when the trace gained rows."""
    hit = _CACHE.get(trace)
    if hit is None or hit[0] != trace.n_steps:
        hit = (trace.n_steps, OptimContext(trace))
        _CACHE[trace] = hit
    return hit[1]


def _measured_rows(trace: Trace, group: str) -> np.ndarray:
    """Row indices that measured ``group`` (every row when none did)."""
    rows = np.flatnonzero(trace.measured(group))
    return rows if len(rows) else np.arange(trace.n_steps)


def fmt(x: float, digits: int = 2) -> str:
    """A short human number: 0.31, 4.1, 1.2e-05, 3.4e+04, nan."""
    if x is None or not np.isfinite(x):
        return "nan" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    ax = abs(x)
    if ax != 0 and (ax < 1e-3 or ax >= 1e4):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}g}" if ax < 1 else f"{x:.{digits + 1}g}"


def nice_lr(x: float) -> str:
    """A learning rate rounded to one significant digit."""
    if not np.isfinite(x) or x <= 0:
        return fmt(x)
    return f"{float(f'{x:.0e}'):g}"


def clamp01(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def rival_causes(why: list[str]) -> str:
    """The evidence clause naming what else may explain a finding ("; but …, which may be the
    real cause"), or "" when nothing does."""
    return "; but " + " and ".join(why) + ", which may be the real cause" if why else ""


class OptimContext:
    """Facts about one trace. Every property is computed on first use and kept."""

    def __init__(self, trace: Trace) -> None:
        self.t = trace
        self.n = trace.n_steps
        # The rows that measured the parameter / module statistics (all rows in full-detail
        # traces); the others hold NaN there and are left out, never filled in.
        self.rows = _measured_rows(trace, "params")
        self.mrows = _measured_rows(trace, "modules")
        self.sub = self.rows[M.subsample_rows(len(self.rows), MAX_ROWS)]
        self._sub_cache: dict[tuple[str, str], np.ndarray] = {}

    # ------------------------------------------------------------------ rows and steps
    def step(self, row: int) -> int:
        row = int(min(max(row, 0), self.n - 1))
        return int(self.t.steps[row])

    def span(self, first: int, last: int) -> list[int]:
        return [self.step(first), self.step(last)]

    @cached_property
    def early(self) -> slice:
        """The first tenth of the rows (at least 3)."""
        return slice(0, max(3, int(math.ceil(self.n / 10))))

    # ------------------------------------------------------------------ metadata
    @cached_property
    def optimizer(self) -> dict[str, Any]:
        return self.t.meta.get("optimizer") or {}

    @cached_property
    def opt_class(self) -> str:
        return str(self.optimizer.get("class") or "")

    @cached_property
    def groups(self) -> list[dict[str, Any]]:
        return [g for g in self.optimizer.get("param_groups") or [] if isinstance(g, dict)]

    @cached_property
    def lr0(self) -> float:
        """The initial learning rate of the first group (trace column, else metadata)."""
        lr = self.t.lr()
        if lr.size and np.isfinite(lr[0, 0]):
            return float(lr[0, 0])
        if self.groups and isinstance(self.groups[0].get("lr"), (int, float)):
            return float(self.groups[0]["lr"])
        return float("nan")

    @cached_property
    def lr_max(self) -> float:
        lr = M.as_float(self.t.lr())
        return float(np.nanmax(lr)) if np.isfinite(lr).any() else self.lr0

    @cached_property
    def weight_decay(self) -> float:
        vals = [float(g.get("weight_decay") or 0.0) for g in self.groups
                if isinstance(g.get("weight_decay", 0.0), (int, float))]
        return max(vals, default=0.0)

    @cached_property
    def loss_class(self) -> str:
        return str((self.t.meta.get("loss") or {}).get("class") or "")

    def module_type(self, name: str) -> str:
        info = self.t.module_info.get(name)
        if info:
            return str(info.get("type", ""))
        if name in self.t.module_names:
            return self.t.module_types[self.t.module_names.index(name)]
        return ""

    def module_args(self, name: str) -> dict[str, Any]:
        return dict((self.t.module_info.get(name) or {}).get("args") or {})

    # ------------------------------------------------------------------ parameters
    @cached_property
    def info(self) -> list[dict[str, Any]]:
        return self.t.param_info

    @cached_property
    def weights(self) -> list[int]:
        """Weight matrices/kernels (≥ 2-D, not embeddings) in model order."""
        out = []
        for i, p in enumerate(self.info):
            if len(p["shape"]) >= 2 and self.module_type(p["module"]) not in EMBEDDING_TYPES:
                out.append(i)
        return out

    @cached_property
    def has_optimizer(self) -> bool:
        """Whether the recorder knew the optimizer (else ``in_optimizer`` says nothing)."""
        return bool(self.groups) or any(p["in_optimizer"] for p in self.info)

    @cached_property
    def trainable(self) -> np.ndarray:
        """Per parameter: requires_grad and in an optimizer group (when the optimizer is known)."""
        return np.array([p["requires_grad"] and (p["in_optimizer"] or not self.has_optimizer)
                         for p in self.info], bool)

    def name(self, i: int) -> str:
        return self.info[i]["name"]

    def label(self, i: int) -> str:
        """Parameter ``i`` as a user reads it: ``model.0.weight (Linear 13→64)``."""
        return param_label(self.t, i)

    def mlabel(self, j: int) -> str:
        """Leaf module ``j`` as a user reads it: ``model.1 (ReLU)``."""
        return module_label_at(self.t, j)

    def fan(self, i: int) -> int:
        p = self.info[i]
        if self.module_type(p["module"]) in RECURRENT_TYPES:
            hidden = self.module_args(p["module"]).get("hidden_size")
            if isinstance(hidden, int) and hidden > 0:
                return hidden
        return M.fan_in(p["shape"])

    def stat(self, name: str, rows: Any = None) -> np.ndarray:
        head = self._head_block("params", name, rows)
        if head is not None:
            return M.as_float(head)
        if isinstance(rows, np.ndarray):  # only the rows asked for, not the whole column
            return M.as_float(self._at("params", name, rows))
        a = self.t.param_stat(name)
        return M.as_float(a if rows is None else a[rows])

    def _at(self, group: str, name: str, rows: np.ndarray, col: int | None = None) -> np.ndarray:
        """``rows`` of a statistic (float32 as stored); those of ``self.sub`` are kept."""
        if rows is not self.sub:
            return (self.t.param_rows(name, rows) if group == "params"
                    else self.t.module_rows(name, rows, col))
        key = (group, name)
        if key not in self._sub_cache:
            self._sub_cache[key] = (self.t.param_rows(name, rows) if group == "params"
                                    else self.t.module_rows(name, rows))
        a = self._sub_cache[key]
        return a if col is None else a[:, col]

    def _head_block(self, group: str, name: str, rows: Any) -> np.ndarray | None:
        """A short slice of rows read on its own (not the whole column) unless the column is cached."""
        if not isinstance(rows, slice) or rows.step not in (None, 1) or self.n < 1000:
            return None
        start, stop, _ = rows.indices(self.n)
        path = f"{group}/{name}"
        if stop - start > 200 or ("rows", path) in self.t._cache or not self.t.has(path):  # noqa: SLF001
            return None
        return self.t.stat_block(group, name, slice(start, stop))

    @cached_property
    def w_norm(self) -> np.ndarray:
        return self.stat("w_norm", self.sub)

    @cached_property
    def g_norm(self) -> np.ndarray:
        return self.stat("g_norm", self.sub)

    @cached_property
    def rel_grad(self) -> np.ndarray:
        """``(rows, P)`` ‖g‖/‖w‖ on the thinned rows."""
        return M.ratio(self.g_norm, self.w_norm)

    @cached_property
    def update(self) -> np.ndarray:
        """``(rows, P)`` update/weight ratio on the thinned rows."""
        return self.stat("update_ratio", self.sub)

    @cached_property
    def sub_early(self) -> np.ndarray:
        """Positions in ``sub`` of rows in the first tenth of the run."""
        return np.flatnonzero(self.sub < self.early.stop)

    @cached_property
    def init_scale(self) -> dict[int, float]:
        """Weight std at the first finite row x sqrt(fan): ≈0.6-1.4 for standard inits.

        When that row was recorded after the first optimizer step, a huge first update
        could have inflated it: ‖w₀‖ ≥ ‖w₁‖ / (1 + update ratio), so divide by that.
        """
        std = self.stat("w_std", slice(0, min(self.n, 5)))
        upd = self.stat("update_ratio", slice(0, min(self.n, 5)))
        out = {}
        for i in self.weights:
            col = std[:, i]
            ok = np.flatnonzero(np.isfinite(col))
            if len(ok):
                u0 = upd[ok[0], i]
                q = float(M.init_scale(col[ok[0]], self.fan(i)))
                out[i] = q / (1.0 + u0) if np.isfinite(u0) and u0 > 0 else q
        return out

    @cached_property
    def large_init_layers(self) -> list[int]:
        return [i for i, q in self.init_scale.items() if q >= LARGE_INIT]

    @cached_property
    def init_rel_grad(self) -> float:
        """Median over weight layers of ‖g‖/‖w‖ at the first row (healthy ≈ 0.01-0.3)."""
        if not self.weights:
            return float("nan")
        rows = np.flatnonzero(np.isfinite(self.rel_grad[:, self.weights]).any(axis=1))
        if not len(rows):
            return float("nan")
        return float(M.nanmedian(self.rel_grad[rows[0], self.weights]))

    # ------------------------------------------------------------------ update ratios
    @cached_property
    def moving(self) -> list[int]:
        """Trainable weight layers whose update ratio was measured > 0 on some row."""
        u = self.update
        return [i for i in self.weights if self.trainable[i] and np.nanmax(
            np.where(np.isfinite(u[:, i]), u[:, i], -1.0), initial=-1.0) > 0]

    @cached_property
    def update_row(self) -> np.ndarray:
        """``(rows,)`` median across moving weight layers of the update ratio."""
        if not self.moving:
            return np.full(len(self.sub), np.nan)
        return M.nanmedian(self.update[:, self.moving], axis=1)

    @cached_property
    def update_high(self) -> float:
        """How large updates got: the largest of the median over the first 3 measured rows (the
        first steps, before a blow-up can kill the gradients), the 95th percentile over the
        first tenth and the 90th percentile over the run."""
        u = self.update_row
        measured = u[np.isfinite(u)]
        first = float(np.median(measured[:3])) if len(measured) else np.nan
        early = M.nanpercentile(u[self.sub_early], 95) if len(self.sub_early) else np.nan
        return float(np.nanmax([first, early, M.nanpercentile(u, 90), -np.inf]))

    @cached_property
    def update_layer_median(self) -> dict[int, float]:
        u = self.update
        return {i: float(M.nanmedian(u[:, i])) for i in self.moving}

    # ------------------------------------------------------------------ loss
    @cached_property
    def loss(self) -> np.ndarray:
        return np.asarray(self.t.loss(), dtype=np.float64)

    @cached_property
    def profile(self) -> LossProfile:
        return M.loss_profile(self.loss)

    @cached_property
    def baseline(self) -> float:
        """Loss of the best constant prediction, from the recorded targets (NaN if unknown)."""
        try:
            return self._baseline()
        except (KeyError, ValueError, IndexError, TypeError):
            return float("nan")

    def _baseline(self) -> float:
        loss = self.t.meta.get("loss") or {}
        args = loss.get("args") or {}
        if str(args.get("reduction", "mean")) != "mean" or args.get("weight") is not None:
            return float("nan")
        name = self.loss_class.lower()
        if name in ("crossentropyloss", "nllloss"):
            if not self.t.has("targets/class_hist") or self.t.batch_attrs("targets").get("kind") != "index":
                return float("nan")
            counts = np.nansum(M.as_float(self.t.batch("targets", "class_hist")), axis=0)
            eps = float(args.get("label_smoothing") or 0.0)
            if eps > 0 and counts.sum() > 0:
                p = counts / counts.sum()
                counts = (1 - eps) * p + eps / len(p)
            return float(M.constant_predictor_loss(name, class_counts=counts))
        if not self.t.has("targets/sample"):
            return float("nan")
        sample = self.t.batch("targets", "sample")
        half = sample[len(sample) // 2:][-2000:]
        return float(M.constant_predictor_loss(name, target_sample=half.reshape(-1, half.shape[-1])))

    @cached_property
    def init_blowup(self) -> float:
        """Initial loss / constant-prediction loss: ≫ 1 when the outputs start exploded (NaN if unknown)."""
        start, base = self.profile.start, self.baseline
        if np.isfinite(start) and np.isfinite(base) and base > 0:
            return float(start / base)
        return float("nan")

    @cached_property
    def input_scale(self) -> float:
        """The largest input feature's typical size (root median of mean² + std² over steps, the figure
        unnormalized_inputs quotes): ≈ 1 for standardised inputs, NaN when not recorded."""
        return input_size(self.t)[0]

    @cached_property
    def loss_bad(self) -> bool:
        """The loss diverged, went non-finite, or ended near where it started / a constant predictor."""
        p = self.profile
        if p.diverged or not p.finite:
            return True
        if not np.isfinite(p.end):
            return True
        if np.isfinite(self.baseline) and self.baseline > 0:
            return p.end >= 0.8 * self.baseline
        return not (p.drop >= 0.2)

    @cached_property
    def loss_good(self) -> bool:
        """The loss fell a lot and ended well below a constant predictor's loss."""
        p = self.profile
        if p.diverged or not p.finite or not (p.drop >= 0.3):
            return False
        if np.isfinite(self.baseline) and self.baseline > 0:
            return p.end <= 0.6 * self.baseline
        return True

    def loss_text(self) -> str:
        p = self.profile
        best = self.loss[p.best_row] if 0 <= p.best_row < self.n else p.best
        text = (f"loss {fmt(p.start)} at the start, {fmt(p.end)} at the end (best {fmt(best)} at step "
                f"{self.step(max(p.best_row, 0))})")
        if p.swings:
            text += f", but its mean over the last tenth is {fmt(p.end_mean)} (large spikes)"
        if np.isfinite(self.baseline):
            text += f"; a constant prediction scores {fmt(self.baseline)}"
        if not p.finite:
            text += f"; non-finite from step {self.step(p.first_nonfinite)}"
        return text

    # ------------------------------------------------------------------ gradients over time
    @cached_property
    def carry(self) -> tuple[float, float]:
        """``(median, fraction of rows ≥ 0.5)`` of grad_carry after the first row (NaN if unknown)."""
        c = M.as_float(self.t.grad_carry())[1:]
        c = c[np.isfinite(c)]
        if len(c) == 0:
            return float("nan"), float("nan")
        return float(np.median(c)), float(np.mean(c >= 0.5))

    @cached_property
    def carry_period(self) -> float:
        """Median number of rows between gradient resets over the run (see ``reset_period``)."""
        return reset_period(M.as_float(self.t.grad_carry()))

    @cached_property
    def carry_high(self) -> bool:
        """Gradients pile up across steps, not as short deliberate accumulation (period > 16)."""
        med, frac = self.carry
        return bool(np.isfinite(med) and med >= 0.5 and frac >= 0.6 and not self.carry_period <= 16)

    @cached_property
    def grad_full(self) -> np.ndarray:
        """``(N,)`` global gradient norm over parameters that require grad, every row (NaN unmeasured)."""
        idx = [i for i in range(len(self.info)) if self.info[i]["requires_grad"]]
        if not idx:
            return np.full(self.n, np.nan)

        def norm(g: np.ndarray) -> np.ndarray:
            return M.global_norm(g[:, idx] if len(idx) < g.shape[1] else g)

        return self.t.reduce_rows("params", "g_norm", norm, f"global_norm{idx}")

    @cached_property
    def grad_bad_row(self) -> int:
        """First row with a non-finite gradient (-1 if none)."""
        return M.first_true(self.t.reduce_rows("params", "g_nonfinite", M.any_positive, "any_positive"))

    @cached_property
    def grad_global(self) -> np.ndarray:
        """``(rows,)`` global gradient norm over trainable parameters on the thinned rows."""
        idx = [i for i in range(len(self.info)) if self.info[i]["requires_grad"]]
        return M.global_norm(self.g_norm[:, idx]) if idx else np.full(len(self.sub), np.nan)

    # ------------------------------------------------------------------ weights over time
    @cached_property
    def weight_shrink(self) -> float:
        """Median over trainable weight layers of ‖w‖ at the end / at the first row (weight norms
        are not noisy: the first row is the initialisation, before decay could act)."""
        idx = [i for i in self.weights if self.trainable[i]]
        if not idx or self.n < 2:
            return float("nan")
        w = self.w_norm[:, idx]
        k = max(1, len(w) // 20)
        start, end = w[0], M.nanmedian(w[-k:], axis=0)
        return float(M.nanmedian(M.ratio(end, start)))

    @cached_property
    def decay_share(self) -> float:
        """How much weight decay weighs in each step (≥ 1: it dominates; NaN without decay).

        SGD and AdamW shrink every weight by lr·wd per step: compared with the median update
        ratio. Adam-style L2 adds wd·w to the gradient: wd·‖w‖ compared with ‖g‖ at the start.
        """
        wd, lr = self.weight_decay, self.lr_max
        if not wd > 0 or not self.moving:
            return float("nan")
        if self.opt_class in ("SGD", "AdamW") and np.isfinite(lr):
            u = float(M.nanmedian(self.update_row))
            return float(lr * wd / u) if u > 0 else float("nan")
        rows = np.flatnonzero(np.isfinite(self.g_norm[:, self.moving]).all(axis=1))
        if not len(rows):
            return float("nan")
        r = rows[0]
        return float(M.nanmedian(M.ratio(wd * self.w_norm[r, self.moving], self.g_norm[r, self.moving])))

    # ------------------------------------------------------------------ activations
    def module_stat(self, name: str, rows: Any = None, col: int | None = None) -> np.ndarray:
        """A module statistic as float64 (Inf → NaN), sliced before converting (cheap on long runs)."""
        head = self._head_block("modules", name, rows)
        if head is not None:
            return M.as_float(head if col is None else head[:, col])
        if isinstance(rows, np.ndarray):  # only the rows asked for, not the whole column
            return M.as_float(self._at("modules", name, rows, col))
        a = self.t.module_stat(name)
        if col is not None:
            a = a[:, col]
        return M.as_float(a if rows is None else a[rows])

    @cached_property
    def output_module(self) -> int:
        """Index of the last leaf module that ran (the model's output activation, if any)."""
        ran = np.isfinite(self.module_stat("a_std", self.sub)).any(axis=0)
        idx = np.flatnonzero(ran)
        return int(idx[-1]) if len(idx) else len(self.t.module_names) - 1

    @cached_property
    def act_growth(self) -> tuple[float, int, int]:
        """``(log10 growth, first, last)`` of the output std from the first to the last Linear/Conv
        module at the first row (NaN with fewer than 2 such modules that ran)."""
        if self.n == 0:
            return float("nan"), -1, -1
        std = self.module_stat("a_std", slice(0, 1))[0]
        lin = [j for j, t in enumerate(self.t.module_types) if t.startswith(("Linear", "Conv"))
               and j < len(std) and np.isfinite(std[j]) and std[j] > 0]
        if len(lin) < 2:
            return float("nan"), -1, -1
        return float(np.log10(std[lin[-1]] / std[lin[0]])), lin[0], lin[-1]

    @cached_property
    def saturation(self) -> dict[int, tuple[float, float]]:
        """Hidden bounded modules: ``(median sat over the first rows, median over the second half)``."""
        sat = self.module_stat("a_sat_frac", self.sub)
        out = {}
        half = len(self.sub) // 2
        types = self.t.module_types
        for j in range(sat.shape[1]):
            if j == self.output_module or not np.isfinite(sat[:, j]).any():
                continue
            if j < len(types) and types[j] not in SQUASH_TYPES:
                continue
            out[j] = (float(M.nanmedian(sat[:3, j])), float(M.nanmedian(sat[half:, j])))
        return out

    @cached_property
    def saturated_modules(self) -> list[int]:
        return [j for j, (s0, s1) in self.saturation.items() if max(s0, s1) >= 0.5]

    @cached_property
    def relu_modules(self) -> list[int]:
        return [j for j, t in enumerate(self.t.module_types) if t in RELU_TYPES and j != self.output_module]

    @cached_property
    def dead(self) -> dict[int, tuple[float, float, str]]:
        """ReLU modules: ``(dead fraction at the start, persistent dead fraction late, source)``.

        With liveness windows, "late" is the fraction of units that fired in none of the
        windows of the second half; otherwise the median of the per-batch dead fraction.
        """
        out = {}
        dead = self.module_stat("a_dead_frac", self.sub)
        half = len(self.sub) // 2
        for j in self.relu_modules:
            start = float(M.nanmedian(dead[:1, j]))
            alive = self.t.unit_alive(j)
            if alive is not None and len(alive) >= 1 and alive.shape[1] > 0:
                late = alive[len(alive) // 2:]
                out[j] = (start, float(1.0 - late.max(axis=0).astype(bool).mean()), "windows")
            elif np.isfinite(dead[:, j]).any():
                out[j] = (start, float(M.nanmedian(dead[half:, j])), "batches")
        return out

    # ------------------------------------------------------------------ symmetry
    @cached_property
    def symmetry(self) -> dict[int, tuple[float, float, int, int]]:
        """Weight layers whose units (rows) start identical: ``{i: (spread0, spread_last, s0, s1)}``.

        Spread = max over columns of the std across rows / RMS (0 = identical rows), from the
        first and last weight snapshots (rows ``s0``/``s1`` of the trace); without snapshots,
        a weight whose std is 0 at the first row (a constant matrix) counts as identical.
        """
        out: dict[int, tuple[float, float, int, int]] = {}
        snaps = self.t.snapshot_steps()
        if len(snaps):
            first, last = 0, len(snaps) - 1
            s0, s1 = self.t.row_of(int(snaps[first])), self.t.row_of(int(snaps[last]))
            for i in self.weights:
                w0 = self.t.snapshot("weight", i, first)
                if w0 is None or w0.ndim < 2 or w0.shape[0] < 2:
                    continue
                spread0 = M.row_spread(w0)
                if spread0 <= 1e-6:
                    w1 = self.t.snapshot("weight", i, last) if last != first else None
                    out[i] = (spread0, M.row_spread(w1) if w1 is not None else float("nan"), s0, s1)
            return out
        std = self.stat("w_std", self.sub)
        mean = self.stat("w_mean", self.sub)
        for i in self.weights:
            if self.info[i]["shape"][0] < 2:
                continue
            col = np.flatnonzero(np.isfinite(std[:, i]))
            if len(col) and std[col[0], i] <= 1e-7 * max(abs(mean[col[0], i]), 1e-30):
                last = col[-1]
                spread_last = 0.0 if std[last, i] <= 1e-7 * max(abs(mean[last, i]), 1e-30) else float("nan")
                out[i] = (0.0, spread_last, int(self.sub[col[0]]), int(self.sub[last]))
        return out

    @cached_property
    def symmetric_layers(self) -> list[int]:
        """Layers identical at init that stayed (nearly) identical, or with no later evidence."""
        return [i for i, (_, s1, _, _) in self.symmetry.items() if not (s1 >= 0.05)]


def reset_period(c: np.ndarray) -> float:
    """Median number of rows between gradient resets (grad_carry < 0.1 after a high value);
    NaN with fewer than 2 resets. Deliberate accumulation over k micro-batches gives k."""
    ok = np.isfinite(c)
    low = ok & (c < 0.1)
    resets = np.flatnonzero(low[1:] & (ok[:-1] & (c[:-1] >= 0.1))) + 1
    return float(np.median(np.diff(resets))) if len(resets) >= 2 else float("nan")
