"""Trace-side helpers of the data / outputs / loss detectors: row windows, cheap batch reads, facts.

Batch summaries can be large (``outputs/sample`` is ``(N, 16, ≤256)``), so detectors read
windows of rows (the early part, the late part, or an evenly thinned subset of the run),
never whole ``(N, …)`` blocks; reads are cached per trace for the length of one analysis.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from analysis import batch_metrics as M
from analysis.trace import Trace

MAX_ROWS = 2000  # rows of a (N, …) field one detector reads at most
ONE_D = {"row_sum_mean", "row_sum_std", "min", "max", "frac_in_01", "softmax_maxprob", "nonfinite",
         "mean", "std", "maxabs"}
# Leaf modules that do not change the range of what passes through them.
PASS_THROUGH = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Identity", "Flatten",
                "Unflatten"}
NORM_TYPES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
              "InstanceNorm2d", "InstanceNorm3d", "LazyBatchNorm1d", "RMSNorm")
EMBEDDING_TYPES = ("Embedding", "EmbeddingBag")

_CACHE: weakref.WeakKeyDictionary[Trace, dict[Any, np.ndarray]] = weakref.WeakKeyDictionary()


# ----------------------------------------------------------------------------- windows of rows
def _window(n: int, share: float, cap: int) -> int:
    return int(min(max(round(share * n), min(n, 5)), cap, n))


def late(trace: Trace, share: float = 0.2, cap: int = MAX_ROWS) -> slice:
    """The last ``share`` of the rows (at least 5, at most ``cap``)."""
    n = trace.n_steps
    return slice(n - _window(n, share, cap), n)


def early(trace: Trace, share: float = 0.2, cap: int = MAX_ROWS) -> slice:
    """The first ``share`` of the rows (at least 5, at most ``cap``)."""
    return slice(0, _window(trace.n_steps, share, cap))


def thin(trace: Trace, cap: int = MAX_ROWS, blocks: int = 16) -> slice | np.ndarray:
    """Rows covering the whole run, at most ``cap``: all of them, or ``blocks`` evenly spread runs.

    Contiguous runs, not every k-th row: a strided HDF5 read touches every chunk and is ~100×
    slower than reading a few blocks.
    """
    n = trace.n_steps
    if n <= cap:
        return slice(0, n)
    length = max(cap // blocks, 1)
    starts = np.linspace(0, n - length, blocks).astype(np.int64)
    return np.unique(np.concatenate([np.arange(s, s + length) for s in starts]))


def step_span(trace: Trace, rows: slice | np.ndarray | None = None) -> list[int]:
    """``[first, last]`` global step of a window of rows."""
    steps = trace.steps if rows is None else trace.steps[rows]
    if not len(steps):
        return [0, 0]
    return [int(steps[0]), int(steps[-1])]


# ----------------------------------------------------------------------------- reads
def has(trace: Trace, group: str, field: str) -> bool:
    return trace.has(f"{group}/{field}")


def _runs(rows: np.ndarray) -> list[slice]:
    """Sorted row indices → the contiguous slices that cover them."""
    rows = np.asarray(rows, dtype=np.int64)
    if not rows.size:
        return []
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    return [slice(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, cuts)]


def read(trace: Trace, group: str, field: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
    """Rows (a slice or sorted indices; all when None) of a batch field, cached for this trace."""
    if rows is None:
        rows = slice(0, trace.n_steps)
    cache = _CACHE.setdefault(trace, {})
    if isinstance(rows, slice):
        key: tuple = (trace.n_steps, group, field, rows.start, rows.stop, rows.step)
    else:
        key = (trace.n_steps, group, field, tuple((r.start, r.stop) for r in _runs(rows)))
    if key not in cache:
        if field in ONE_D:
            out = trace.batch(group, field)[rows]
        elif isinstance(rows, slice):
            out = trace.stat_block(group, field, rows)
        else:
            out = trace.batch_rows(group, field, rows)
        cache[key] = np.asarray(out)
    return cache[key]


def column(trace: Trace, group: str, field: str) -> np.ndarray:
    """A whole ``(N,)`` field as float64 (NaN-filled when absent)."""
    if not has(trace, group, field):
        return np.full(trace.n_steps, np.nan)
    return np.asarray(read(trace, group, field), dtype=np.float64)


def flat_rows(sample: np.ndarray) -> np.ndarray:
    """``(k, R, C)`` samples → ``(k·R, C)`` with rows holding any non-finite value dropped."""
    s = np.asarray(sample, dtype=np.float64)
    s = s.reshape(-1, s.shape[-1]) if s.ndim >= 2 else s.reshape(-1, 1)
    return s[np.isfinite(s).all(axis=1)]


# ----------------------------------------------------------------------------- facts about the run
def loss_class(trace: Trace) -> str | None:
    loss = trace.meta.get("loss")
    return str(loss.get("class")) if isinstance(loss, dict) and loss.get("class") else None


def loss_args(trace: Trace) -> dict[str, Any]:
    loss = trace.meta.get("loss")
    args = loss.get("args") if isinstance(loss, dict) else None
    return args if isinstance(args, dict) else {}


def mean_loss(trace: Trace) -> np.ndarray:
    """The recorded loss per row, divided by the number of terms it summed when ``reduction='sum'``."""
    loss = trace.loss()
    shp = shape(trace, "outputs")
    if loss_args(trace).get("reduction") != "sum" or not shp:
        return loss
    terms = folded_rows(trace, "outputs") if loss_class(trace) in ("CrossEntropyLoss", "NLLLoss") else None
    return loss / max(int(terms or np.prod(shp)), 1)


def leaves(trace: Trace) -> list[tuple[str, str]]:
    """``(name, type)`` of the model's leaf modules in model order."""
    names, types = trace.module_names, trace.module_types
    if names and len(names) == len(types):
        return list(zip(names, types))
    model = trace.meta.get("model") or {}
    mods = [m for m in model.get("modules", []) if isinstance(m, dict)]
    out = []
    for i, m in enumerate(mods):
        name = str(m.get("name", ""))
        nxt = str(mods[i + 1].get("name", "")) if i + 1 < len(mods) else ""
        if name and not nxt.startswith(name + "."):
            out.append((name, str(m.get("type", ""))))
    return out


def _layer(typ: str) -> bool:
    """A leaf of the network proper: not a pass-through, not a loss module held by the model
    (a LightningModule's or Hugging Face model's ``self.loss_fn``)."""
    return typ not in PASS_THROUGH and not typ.endswith("Loss")


def last_leaf(trace: Trace) -> tuple[str, str] | None:
    """The last leaf module that can change values (dropout, identity, flatten, losses skipped)."""
    for name, typ in reversed(leaves(trace)):
        if _layer(typ):
            return name, typ
    return None


def first_leaf(trace: Trace) -> tuple[str, str] | None:
    for name, typ in leaves(trace):
        if _layer(typ):
            return name, typ
    return None


def shape(trace: Trace, group: str) -> tuple[int, ...] | None:
    """The first batch's full shape of ``outputs``/``targets``/``inputs``."""
    value = trace.batch_attrs(group).get("shape")
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return tuple(int(v) for v in value)
    return None


def folded_rows(trace: Trace, group: str) -> int | None:
    """Rows of the 2-D view of a batch group (leading dims folded): the batch size, mostly."""
    shp = shape(trace, group)
    if not shp:
        return None
    return int(np.prod(shp[:-1])) if len(shp) >= 2 else int(shp[0])


def columns(trace: Trace, group: str = "outputs") -> int:
    """Total columns of a batch group (its last dimension; 1 for a 1-D batch)."""
    attrs = trace.batch_attrs(group)
    if isinstance(attrs.get("columns"), (int, float)):
        return int(attrs["columns"])
    shp = shape(trace, group)
    if shp and len(shp) >= 2:
        return shp[-1]
    return 1


def target_kind(trace: Trace) -> str | None:
    kind = trace.batch_attrs("targets").get("kind")
    return str(kind) if kind else None


def integer_dtype(trace: Trace, group: str) -> bool:
    dtype = str(trace.batch_attrs(group).get("dtype", "")).lower()
    return any(t in dtype for t in ("int", "long", "bool", "short", "byte"))


def param_index(trace: Trace, name: str) -> int | None:
    try:
        return trace.param_names.index(name)
    except ValueError:
        return None


def output_bias(trace: Trace, cols: int) -> int | None:
    """Index of the output layer's bias: the last 1-D parameter named ``*bias`` with ``cols`` entries."""
    info = trace.param_info
    for i in range(len(info) - 1, -1, -1):
        p = info[i]
        if p["name"].endswith("bias") and tuple(p["shape"]) == (cols,):
            return i
    return None


def first_epoch_end(trace: Trace) -> int | None:
    """Row of the last step of the first epoch, when it can be told; else None.

    From ``rec.log`` (a scalar logged once per epoch, e.g. ``val_loss``), else from the
    inputs: the first step whose sampled input rows repeat a row sampled at an earlier step
    (within an epoch every sample is seen once). Duplicated samples only make it earlier.
    """
    logged = _first_logged_row(trace)
    if logged is not None:
        return logged
    repeat = _first_repeat_row(trace)
    return repeat if repeat is not None and repeat >= 4 else None


def _first_logged_row(trace: Trace) -> int | None:
    try:
        names = trace.scalar_names()
    except Exception:  # noqa: BLE001 - a damaged scalar table only loses this hint
        return None
    first = None
    for name in names:
        steps, _ = trace.scalar(name)
        if len(steps):
            first = int(steps.min()) if first is None else min(first, int(steps.min()))
    if first is None or first <= 0 or first >= int(trace.steps[-1]):
        return None
    return trace.row_of(first)


def _first_repeat_row(trace: Trace, cap: int = MAX_ROWS) -> int | None:
    if not has(trace, "inputs", "sample"):
        return None
    x = np.asarray(read(trace, "inputs", "sample", slice(0, min(trace.n_steps, cap))))
    if x.ndim != 3 or len(x) < 2:
        return None
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    step_of = np.repeat(np.arange(len(x)), x.shape[1])
    keep = np.isfinite(rows).all(axis=1)
    rows, step_of = rows[keep], step_of[keep]
    if not len(rows):
        return None
    _, first_idx, inverse = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))),
                                      return_index=True, return_inverse=True)
    first_step = step_of[first_idx][inverse.ravel()]
    again = np.flatnonzero(first_step < step_of)
    if not len(again):
        return None
    return int(step_of[again[0]]) - 1 if step_of[again[0]] > 0 else None


def feature_name(trace: Trace, col: int) -> str:
    """The input feature (index into the flattened batch) that kept column ``col`` holds."""
    index = trace.batch_attrs("inputs").get("feature_index")
    if isinstance(index, (list, tuple)) and col < len(index):
        return str(int(index[col]))
    return str(col)


def classes_last(trace: Trace) -> bool:
    """Whether the outputs' last dim is the class axis (``(B, C)``, ``(B, T, C)``), not ``(B, C, H, W)``."""
    out, tgt = shape(trace, "outputs"), shape(trace, "targets")
    if out is None or len(out) <= 2 or tgt is None or target_kind(trace) != "index":
        return True
    return tuple(out[:-1]) == tuple(tgt)


def target_classes(trace: Trace) -> str | None:
    """How the targets name classes: ``"index"``, ``"distribution"`` (one-hot / probability rows),
    ``"binary"`` (one 0/1 column), or None (real-valued, multi-label, or unknown)."""
    cache = _CACHE.setdefault(trace, {})
    key = (trace.n_steps, "target_classes")
    if key not in cache:
        cache[key] = _target_classes(trace)
    return cache[key]


def _target_classes(trace: Trace) -> str | None:
    kind, cols = target_kind(trace), columns(trace, "targets")
    if kind == "index":
        return "index" if classes_last(trace) else None
    if not has(trace, "targets", "sample"):
        return None
    flat = flat_rows(read(trace, "targets", "sample", thin(trace, cap=500)))
    if not len(flat) or not ((flat >= 0) & (flat <= 1)).all():
        return None
    if cols == 1:
        return "binary" if M.frac(np.isclose(flat, 0) | np.isclose(flat, 1)) >= 0.99 else None
    return "distribution" if np.allclose(flat.sum(axis=1), 1, atol=1e-3) else None


def true_shares(trace: Trace) -> np.ndarray | None:
    """Share of each class among the targets over the run, or None for regression targets."""
    rows = thin(trace)
    how = target_classes(trace)
    if how in ("index", "distribution") and has(trace, "targets", "class_hist"):
        return M.class_shares(read(trace, "targets", "class_hist", rows))
    if how == "binary":
        return M.binary_shares(read(trace, "targets", "sample", rows), 0.5)
    return None


def predicted_shares(trace: Trace, rows: slice) -> np.ndarray | None:
    """Share of rows predicted as each class over ``rows`` (argmax, or a single column's threshold)."""
    cols = columns(trace, "outputs")
    if not classes_last(trace):
        return None
    if cols >= 2 and has(trace, "outputs", "argmax_hist"):
        return M.class_shares(read(trace, "outputs", "argmax_hist", rows))
    if cols == 1 and has(trace, "outputs", "sample"):
        probs = output_form(trace) != "logits"
        return M.binary_shares(read(trace, "outputs", "sample", rows), 0.5 if probs else 0.0)
    return None


def sum_tol(trace: Trace) -> float:
    """How far from 1 a row of probabilities may sum in the outputs' dtype (half precision is coarse)."""
    dtype = str(trace.batch_attrs("outputs").get("dtype", "")).lower()
    return 2e-2 if ("16" in dtype or "half" in dtype) else 1e-3


def output_form(trace: Trace) -> str:
    """``"softmax"`` (rows of probabilities), ``"sigmoid"`` (values in [0, 1]) or ``"logits"``."""
    f01 = column(trace, "outputs", "frac_in_01")
    valid = np.isfinite(f01)
    if not valid.any():
        return "logits"
    rsm, rss = column(trace, "outputs", "row_sum_mean"), column(trace, "outputs", "row_sum_std")
    soft = M.softmax_rows(rsm, rss, f01, sum_tol(trace))
    if columns(trace, "outputs") >= 2 and M.frac(soft[valid]) >= 0.98:
        return "softmax"
    mn, mx = column(trace, "outputs", "min"), column(trace, "outputs", "max")
    if M.frac(M.unit_interval(f01, mn, mx)[valid]) >= 0.98:
        return "sigmoid"
    return "logits"


def predicted_counts(trace: Trace, rows: slice | np.ndarray) -> np.ndarray | None:
    """Per step of ``rows``: ``(k, K)`` rows predicted as each class (argmax, or one column's sign)."""
    o_cols = columns(trace, "outputs")
    if o_cols >= 2 and has(trace, "outputs", "argmax_hist"):
        return np.nan_to_num(np.asarray(read(trace, "outputs", "argmax_hist", rows), np.float64))
    if o_cols == 1 and has(trace, "outputs", "sample"):
        o = np.asarray(read(trace, "outputs", "sample", rows), np.float64)[..., 0]
        thr = 0.5 if output_form(trace) != "logits" else 0.0
        fin = np.isfinite(o)
        return np.stack([(fin & (o <= thr)).sum(1), (fin & (o > thr)).sum(1)], axis=1).astype(np.float64)
    return None


def class_counts(trace: Trace, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per step of ``rows``: predicted and target class counts, both ``(k, K)``; None for regression.

    Predictions: ``outputs/argmax_hist``, or a single output column's sign (0.5 for
    probabilities) over the sampled rows. Targets: ``targets/class_hist`` for class indices
    or one-hot/probability rows; a single 0/1 column over the sampled rows.
    """
    how = target_classes(trace)
    if how is None or not classes_last(trace):
        return None
    if how in ("index", "distribution") and has(trace, "targets", "class_hist"):
        truth = np.asarray(read(trace, "targets", "class_hist", rows), np.float64)
    elif how == "binary":
        t = np.asarray(read(trace, "targets", "sample", rows), np.float64)[..., 0]
        truth = np.stack([(t < 0.5).sum(1), (t >= 0.5).sum(1)], axis=1).astype(np.float64)
    else:
        return None
    pred = predicted_counts(trace, rows)
    if pred is None:
        return None
    k = max(pred.shape[1], truth.shape[1])
    pad = [np.pad(np.nan_to_num(a), ((0, 0), (0, k - a.shape[1]))) for a in (pred, truth)]
    return pad[0], pad[1]


def input_size(trace: Trace) -> tuple[float, float, int]:
    """``(largest, median, feature index)`` of the varying input features' typical size (root median
    over thinned steps of mean² + std²); NaNs and -1 when the inputs' statistics were not recorded."""
    if not (has(trace, "inputs", "feat_mean") and has(trace, "inputs", "feat_std")):
        return float("nan"), float("nan"), -1
    rows = thin(trace)
    fm = np.asarray(read(trace, "inputs", "feat_mean", rows), np.float64)
    fs = np.asarray(read(trace, "inputs", "feat_std", rows), np.float64)
    scale = M.feature_scale(fm, fs)
    ok = np.isfinite(scale) & (scale > 0) & (M.nanmax(fs, axis=0) > 0)
    if not ok.any():
        return float("nan"), float("nan"), -1
    idx = np.flatnonzero(ok)
    top = int(idx[np.argmax(scale[ok])])
    return float(scale[top]), float(np.median(scale[ok])), top


def evidence_onset(trace: Trace, per_row, min_frac: float = 0.8) -> int:
    """The step from which a per-row evidence test holds on most measured rows to the end, over
    thinned rows covering the run: ``per_row(rows)`` gives ``(bad, measured)`` boolean arrays.
    0 when it holds from the run's first steps (or never settles)."""
    from analysis.onset import from_start, mask_onset

    rows = thin(trace)
    bad, measured = per_row(rows)
    i = mask_onset(np.asarray(bad, bool), np.asarray(measured, bool), min_frac=min_frac)
    if i < 0:
        return 0
    steps = trace.steps[rows]
    step = int(steps[i])
    return 0 if from_start(step - int(trace.steps[0]), int(trace.steps[-1]) + 1) else step
