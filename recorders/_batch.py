"""Summaries of what ``rec.step`` is given: outputs, targets, inputs.

The first recorded step fixes the shapes (columns kept, features kept, classes); each
later step turns the batch into float64 pieces of the row, on the batch's device.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recorders import _batch_np, _host, schema
from recorders._hooks import first_tensor
from recorders._host import as_2d, as_rows
from recorders._layout import Layout
from recorders._stats import count_nonfinite, dev_scalar

NAN = math.nan
COPY_ELEMS = 1 << 18  # at most this many elements of each batch argument are copied per step
WIDE = 256  # inputs wider than this: only the kept features are copied
_INT_TYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
REF_BYTES = 32 << 20  # at most this much of referenced batches waits for the writer at a time
REF_ELEMS = 1 << 17  # smaller CPU tensors are not copied at rec.step: the writer reads them (torch
# releases the GIL in its reductions, so the writer summarises them beside the training thread)


def as_tensor(obj: Any) -> torch.Tensor | None:
    """The tensor in a batch argument (a tensor, a tuple/list or dict holding tensors)."""
    if isinstance(obj, dict):
        obj = list(obj.values())
    t = first_tensor(obj)
    return None if t is None else t.detach()


def _float(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.to(torch.float32)


def _padded(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``t`` (float64) in a NaN tensor of ``shape``, top-left aligned."""
    if tuple(t.shape) == shape:
        return t.to(torch.float64)
    out = torch.full(shape, NAN, dtype=torch.float64, device=t.device)
    out[tuple(slice(0, min(a, b)) for a, b in zip(t.shape, shape))] = t[
        tuple(slice(0, min(a, b)) for a, b in zip(t.shape, shape))
    ]
    return out


def _std_mean(t: torch.Tensor, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Population std and mean from sums (``torch.std_mean`` is ~30x slower on CPU)."""
    t = t.to(torch.float64)
    n = t.numel() if dim is None else t.shape[dim]
    s = t.sum() if dim is None else t.sum(dim=dim)
    q = (t * t).sum() if dim is None else (t * t).sum(dim=dim)
    mean = s / max(n, 1)
    return torch.sqrt(torch.clamp(q / max(n, 1) - mean * mean, min=0)), mean


def _scalars(*values: Any) -> torch.Tensor:
    dev = next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))
    return torch.stack(
        [v.to(torch.float64) if isinstance(v, torch.Tensor) else dev_scalar(v, dev) for v in values]
    )


def _bincount(x: torch.Tensor, k: int) -> torch.Tensor:
    """Counts of 0..k-1 in ``x`` (int64), without the host sync of ``torch.bincount`` on CUDA."""
    x = x.reshape(-1)
    if x.device.type == "cpu" or x.numel() * k > 1 << 24:
        return torch.bincount(x, minlength=k)[:k]
    return (x.unsqueeze(1) == torch.arange(k, device=x.device)).sum(dim=0)


@dataclass
class _Plan:
    size: int  # row entries of this group
    cols: int = 0  # C (outputs), C_t (targets), F (inputs)
    k: int = 0  # class_hist bins (targets)
    kind: str = "dense"
    feature_index: torch.Tensor | None = None
    index_np: np.ndarray | None = None
    width: int = 0  # D (inputs)


class BatchSummaries:
    """Outputs/targets/inputs summaries with shapes fixed at the first recorded step."""

    def __init__(self, rows: int, max_columns: int, max_features: int, batch_rows: int = 512) -> None:
        self.rows = rows
        self.max_columns = max_columns
        self.max_features = max_features
        self.batch_rows = batch_rows
        self.plans: dict[str, _Plan] = {}
        self.refs = True  # off once a referenced tensor was changed in place before the writer read it
        self.changed = False  # set by the writer thread when it finds such a tensor
        # Bytes of batch tensors handed to the writer by reference, and of those it has read: each
        # counter is written by one thread only. What is in between stays alive until the writer
        # reads it (up to ``flush_secs``), so it is bounded: past REF_BYTES, batches are copied.
        self._ref_sent = 0
        self._ref_done = 0
        self._slots: list[tuple[int, str, _Plan]] = []

    def plan(self, layout: Layout, outputs: Any, targets: Any, inputs: Any) -> None:
        """Add the groups of the arguments given now to ``layout``."""
        o, t, x = as_tensor(outputs), as_tensor(targets), as_tensor(inputs)
        out_cols = 0
        if o is not None:
            out_cols = self._plan_outputs(layout, o)
        if t is not None:
            self._plan_targets(layout, t, out_cols)
        if x is not None:
            self._plan_inputs(layout, x)
        self._slots = self._make_slots()

    def _attrs(self, t: torch.Tensor, columns: int) -> dict[str, Any]:
        return {"shape": json.dumps(list(t.shape)), "dtype": str(t.dtype), "columns": columns}

    def _plan_outputs(self, layout: Layout, o: torch.Tensor) -> int:
        cols = as_2d(o).shape[1]
        c = min(cols, self.max_columns)
        start = layout.width
        g = schema.OUTPUTS
        layout.add_field(f"{g}/sample", (self.rows, c), "float32")
        layout.add_field(f"{g}/col_mean", (c,), "float32")
        layout.add_field(f"{g}/col_std", (c,), "float32")
        layout.add_field(f"{g}/argmax_hist", (c,), "int32")
        for name in schema.OUTPUT_FIELDS[4:]:
            layout.add_field(f"{g}/{name}", (), "float32")
        layout.group_attrs[g] = self._attrs(o, cols)
        self.plans[g] = _Plan(layout.width - start, cols=c)
        return c

    def _plan_targets(self, layout: Layout, t: torch.Tensor, out_cols: int) -> None:
        index = not t.is_floating_point() and t.dtype != torch.bool and not t.is_complex()
        cols = as_2d(t).shape[1]
        c = min(cols, self.max_columns)
        if index:
            k = max(out_cols, 2) if out_cols else max(int(t.max()) + 1 if t.numel() else 0, 2)
            k = min(k, max(self.max_columns, 2))
        else:
            k = c
        start = layout.width
        g = schema.TARGETS
        layout.add_field(f"{g}/sample", (self.rows, c), "float32")
        layout.add_field(f"{g}/class_hist", (k,), "int32" if index else "float32")
        for name in schema.TARGET_FIELDS[2:]:
            layout.add_field(f"{g}/{name}", (), "float32")
        kind = "index" if index else "dense"
        layout.group_attrs[g] = {**self._attrs(t, cols), "kind": kind}
        self.plans[g] = _Plan(layout.width - start, cols=c, k=k, kind=kind)

    def _plan_inputs(self, layout: Layout, x: torch.Tensor) -> None:
        d = as_rows(x).shape[1]
        f = min(d, self.max_features)
        # Evenly spread over [0, d - 1], both ends included: a label appended as the last
        # feature (leakage) is then always among the kept ones.
        index = torch.div(torch.arange(f) * (d - 1), max(f - 1, 1), rounding_mode="floor")
        start = layout.width
        g = schema.INPUTS
        layout.add_field(f"{g}/sample", (self.rows, f), "float32")
        layout.add_field(f"{g}/feat_mean", (f,), "float32")
        layout.add_field(f"{g}/feat_std", (f,), "float32")
        for name in schema.INPUT_FIELDS[3:]:
            layout.add_field(f"{g}/{name}", (), "float32")
        layout.group_attrs[g] = {**self._attrs(x, d), "feature_index": index.numpy()}
        self.plans[g] = _Plan(
            layout.width - start, cols=f, feature_index=index.to(x.device), index_np=index.numpy(), width=d
        )

    # ------------------------------------------------------------------------- per step

    def row_parts(self, outputs: Any, targets: Any, inputs: Any, dev: torch.device) -> list:
        """Float64 row pieces in layout order; NaN for a planned group not given now."""
        parts = []
        for g, arg, fn in (
            (schema.OUTPUTS, outputs, self._outputs),
            (schema.TARGETS, targets, self._targets),
            (schema.INPUTS, inputs, self._inputs),
        ):
            plan = self.plans.get(g)
            if plan is None:
                continue
            t = as_tensor(arg)
            if t is None or t.numel() == 0:
                parts.append(torch.full((plan.size,), NAN, dtype=torch.float64, device=dev))
            else:
                parts.append(torch.cat([p.reshape(-1).to(torch.float64) for p in fn(t, plan)]))
        return parts

    def host_parts(self, outputs: Any, targets: Any, inputs: Any) -> list[np.ndarray]:
        """:meth:`row_parts` for CPU batches, computed with numpy (``_host``)."""
        parts: list[np.ndarray] = []
        plans = self.plans
        for g, arg in ((schema.OUTPUTS, outputs), (schema.TARGETS, targets), (schema.INPUTS, inputs)):
            plan = plans.get(g)
            if plan is None:
                continue
            t = as_tensor(arg)
            if t is None or t.numel() == 0:
                parts.append(np.full(plan.size, np.nan))
            elif t.device.type != "cpu" or t.is_complex() or t.numel() > _host.LARGE:
                fn = self._outputs if g == schema.OUTPUTS else self._targets
                pieces = (self._inputs if g == schema.INPUTS else fn)(t, plan)
                parts += [p.detach().to("cpu", torch.float64).reshape(-1).numpy() for p in pieces]
            elif g == schema.OUTPUTS:
                parts += _host.outputs(t, self.rows, plan.cols)
            elif g == schema.TARGETS:
                parts += _host.targets(t, self.rows, plan.cols, plan.kind, plan.k)
            else:
                parts += _host.inputs(t, self.rows, plan.cols, plan.width, plan.index_np)
        return [p.reshape(-1) for p in parts]

    # ------------------------------------------------------------------------- CPU path

    def _bound(self, width: int) -> int:
        """Rows copied of a batch argument ``width`` wide: the bounded row sample."""
        return max(self.rows, min(self.batch_rows, COPY_ELEMS // max(width, 1)))

    def copies(self, outputs: Any, targets: Any, inputs: Any) -> tuple:
        """What the writer thread needs to summarise a CPU batch: per planned group a numpy
        copy of the first rows (see :meth:`_bound`), precomputed parts, or None (absent).

        A small CPU tensor is passed by reference with its version counter instead (no copy
        on the training thread); the writer reads it later and, should it have been changed
        in place meanwhile, records NaN for it and every later batch is copied."""
        if self.changed:
            self.refs = False
        refs = self.refs
        out = []
        args = (outputs, targets, inputs)
        for k, g, plan in self._slots:
            arg = args[k]
            if refs and type(arg) is torch.Tensor and arg.is_cpu:
                n = arg.numel()
                nbytes = n * arg.element_size()
                if n <= REF_ELEMS and self._ref_sent - self._ref_done + nbytes <= REF_BYTES:
                    self._ref_sent += nbytes
                    out.append(("ref", arg, arg._version))
                    continue
            out.append(self._copy(g, plan, arg))
        return tuple(out)

    def _make_slots(self) -> list[tuple[int, str, _Plan]]:
        """(argument index, group, plan) of each planned group, in row order."""
        order = ((0, schema.OUTPUTS), (1, schema.TARGETS), (2, schema.INPUTS))
        return [(k, g, self.plans[g]) for k, g in order if g in self.plans]

    def _copy(self, g: str, plan: _Plan, arg: Any) -> Any:
        """One batch argument as the writer takes it (see :meth:`copies`)."""
        t = as_tensor(arg)
        if t is None or t.numel() == 0:
            return None
        if t.device.type != "cpu" or t.is_complex():
            fn = {schema.OUTPUTS: self._outputs, schema.TARGETS: self._targets}.get(g, self._inputs)
            parts = [p.detach().to("cpu", torch.float64).reshape(-1).numpy() for p in fn(t, plan)]
            return ("parts", np.concatenate(parts))
        if g == schema.INPUTS:
            return self._input_copy(t, plan)
        a = _host.as_numpy(t)
        a = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(-1, 1)
        return a[: self._bound(a.shape[1])].copy()

    def _resolve(self, g: str, item: Any) -> Any:
        """A ``("ref", tensor, version)`` item read now (writer thread); None if changed since."""
        if not (isinstance(item, tuple) and item[0] == "ref"):
            return item
        _, t, version = item
        got = self._copy(g, self.plans[g], t)
        if t._version != version:
            self.changed = True
            return None
        return got

    def _input_copy(self, x: torch.Tensor, plan: _Plan) -> tuple:
        a = _host.as_numpy(x)
        d = int(np.prod(a.shape[1:])) if a.ndim >= 1 else 1
        if d == plan.width and d <= WIDE:
            a = a.reshape(-1, d) if a.ndim >= 1 else a.reshape(1, 1)
            return ("full", a[: self._bound(d)].copy())
        x2 = as_rows(x)
        x2 = x2[: self._bound(d)]
        xf = _float(x2)
        n = max(xf.numel(), 1)
        s, q = float(xf.sum()), float(torch.linalg.vector_norm(xf)) ** 2
        mn, mx = torch.aminmax(xf)
        mean = s / n
        std = math.sqrt(max(q / n - mean * mean, 0.0)) if math.isfinite(q) else NAN
        finite = math.isfinite(s) and math.isfinite(q)
        nonfinite = 0 if finite else int(count_nonfinite(xf))
        scalars = np.array([mean, std, max(abs(float(mn)), abs(float(mx))), nonfinite], np.float64)
        if d != plan.width:
            return ("nofeat", scalars)
        return ("kept", _host.as_numpy(xf.index_select(1, plan.feature_index)).copy(), scalars)

    def block(self, items: list[tuple]) -> np.ndarray:
        """The batch part of ``n`` rows, ``(n, width)`` float64, from :meth:`copies` (writer thread)."""
        cols = []
        held = 0
        planned = [g for g in (schema.OUTPUTS, schema.TARGETS, schema.INPUTS) if g in self.plans]
        for pos, g in enumerate(planned):
            plan = self.plans[g]
            col = [it[pos] for it in items]
            refs = [c[1] for c in col if type(c) is tuple and c and c[0] == "ref"]
            uniform = len({(t.shape, t.dtype) for t in refs}) == 1  # one shape and dtype
            if refs:
                held += len(refs) * _nbytes(refs[0]) if uniform else sum(map(_nbytes, refs))
            fast = self._bulk(g, plan, col, refs) if uniform and len(refs) == len(col) else None
            if fast is not None:
                cols.append(fast)
                continue
            col = [self._resolve(g, c) for c in col]
            parts = [c if isinstance(c, tuple) and c[0] == "parts" else None for c in col]
            if any(p is not None for p in parts):  # rare: mixed devices; one row at a time
                cols.append(np.vstack([self._one(g, plan, c) for c in col]))
                continue
            cols.append(_batch_np.block(col, plan.size, self._block_fn(g, plan)))
        self._ref_done += held  # read: the training thread may hand over as much again
        return np.hstack(cols) if cols else np.zeros((len(items), 0))

    def _bulk(self, g: str, plan: _Plan, col: list, refs: list) -> np.ndarray | None:
        """The usual case in one go: every item of ``col`` a reference to an unchanged CPU tensor
        (``refs``) of one shape and dtype (the caller checked); stacked by one torch call and
        summarised as a block. Else None."""
        t0 = refs[0]
        dtype = t0.dtype
        if t0.is_complex() or t0.numel() == 0 or not (t0.is_floating_point() or dtype in _INT_TYPES):
            return None
        with torch.no_grad():
            stacked = torch.stack(refs)
        if [t._version for t in refs] != [c[2] for c in col]:
            return None  # one was changed in place: the per-item path finds which
        a = _host.as_numpy(stacked)
        n = a.shape[0]
        if g == schema.INPUTS:
            d = int(np.prod(a.shape[2:])) if a.ndim >= 2 else 1
            if d != plan.width or d > WIDE:
                return None
            x = a.reshape(n, -1, d)[:, : self._bound(d)]
            with np.errstate(**_batch_np.QUIET):
                return _batch_np.inputs_full(x, self.rows, plan.cols, plan.index_np)
        a = a.reshape(n, -1, a.shape[-1]) if a.ndim >= 3 else a.reshape(n, -1, 1)
        a = a[:, : self._bound(a.shape[2])]
        with np.errstate(**_batch_np.QUIET):
            if g == schema.OUTPUTS:
                return _batch_np.outputs(a.astype(np.float64), self.rows, plan.cols)
            return _batch_np.targets(a, self.rows, plan.cols, plan.kind, plan.k)

    def _one(self, g: str, plan: _Plan, item: Any) -> np.ndarray:
        if item is None:
            return np.full((1, plan.size), np.nan)
        if isinstance(item, tuple) and item[0] == "parts":
            return item[1].reshape(1, -1)
        return _batch_np.block([item], plan.size, self._block_fn(g, plan))

    def _block_fn(self, g: str, plan: _Plan):
        rows = self.rows
        if g == schema.OUTPUTS:
            return lambda run: _batch_np.outputs(np.stack(run).astype(np.float64), rows, plan.cols)
        if g == schema.TARGETS:
            return lambda run: _batch_np.targets(np.stack(run), rows, plan.cols, plan.kind, plan.k)
        return lambda run: _batch_np.inputs(run, rows, plan.cols, plan.index_np)

    def _outputs(self, o: torch.Tensor, plan: _Plan) -> list[torch.Tensor]:
        o2 = _float(as_2d(o))
        c = plan.cols
        kept = o2[:, :c]
        sample = _padded(o2[: self.rows, :c], (self.rows, c))
        std, mean = _std_mean(kept, dim=0)
        if o2.shape[1] > 1:
            am = o2.argmax(dim=1).clamp_(max=c - 1)
            hist = _bincount(am, c)
        else:
            hist = torch.zeros(c, dtype=torch.int64, device=o.device)
        rs_std, rs_mean = _std_mean(o2.sum(dim=1))
        mn, mx = torch.aminmax(o2)
        in01 = ((o2 >= 0) & (o2 <= 1)).sum() / o2.numel()
        maxprob = torch.softmax(o2, dim=1).amax(dim=1).mean()
        tail = _scalars(rs_mean, rs_std, mn, mx, in01, maxprob, count_nonfinite(o2))
        return [sample, _padded(mean, (c,)), _padded(std, (c,)), _padded(hist, (c,)), tail]

    def _targets(self, t: torch.Tensor, plan: _Plan) -> list[torch.Tensor]:
        t2 = as_2d(t)
        c = plan.cols
        tf = _float(t2)
        sample = _padded(tf[: self.rows, :c], (self.rows, c))
        if plan.kind == "index":
            if t2.is_floating_point() or t2.dtype == torch.bool:
                hist = torch.full((plan.k,), NAN, dtype=torch.float64, device=t.device)
            else:
                lab = t2.reshape(-1).clamp(min=-1, max=plan.k - 1) + 1
                hist = _bincount(lab, plan.k + 1)[1:]
        else:
            hist = _padded(tf[:, : plan.k].sum(dim=0), (plan.k,))
        std, mean = _std_mean(tf)
        mn, mx = torch.aminmax(tf)
        return [sample, hist, _scalars(mean, std, mn, mx, count_nonfinite(tf))]

    def _inputs(self, x: torch.Tensor, plan: _Plan) -> list[torch.Tensor]:
        x2 = _float(as_rows(x))
        f = plan.cols
        if x2.shape[1] == plan.width:
            sel = x2 if f == plan.width else x2.index_select(1, plan.feature_index)
            sample = _padded(sel[: self.rows], (self.rows, f))
            fstd, fmean = _std_mean(sel, dim=0)
        else:  # the feature count changed: per-feature summaries unknown
            nan = torch.full((f,), NAN, dtype=torch.float64, device=x.device)
            sample = torch.full((self.rows, f), NAN, dtype=torch.float64, device=x.device)
            fmean = fstd = nan
        n = x2.numel()
        s = x2.sum()
        q = torch.linalg.vector_norm(x2)
        mean = s / n
        std = torch.sqrt(torch.clamp(q * q / n - mean * mean, min=0))
        mn, mx = torch.aminmax(x2)
        maxabs = torch.maximum(mn.abs(), mx.abs())
        return [sample, fmean, fstd, _scalars(mean, std, maxabs, count_nonfinite(x2))]


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
