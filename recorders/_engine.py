"""The per-step machinery behind :class:`recorders.TraceRecorder`.

One ``Engine`` per recorder: it owns the hooks and the writer, decides what each
``rec.step`` call records (rows, snapshots, histograms, liveness windows), assembles the
row on the model's device and hands it to the writer thread.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from recorders import _dist, _host, _meta, _plan, _stats, schema
from recorders._batch import BatchSummaries
from recorders._hooks import (
    ActivationCapture,
    ErrorSink,
    GradProbe,
    OptimizerHooks,
    UpdateTracker,
    leaf_modules,
)
from recorders._layout import Layout
from recorders._options import Options
from recorders._recorder import TrainwreckWarning
from recorders._writer import TraceWriter

WRITER_VERSION = "0.1.0"
DEVICE_PATH_ON_CPU = False  # tests set True to run the accelerator path on CPU tensors
NPR = len(_stats.PARAM_RAW)
NMR = len(_stats.MODULE_RAW)


class Engine:
    def __init__(
        self,
        path: str,
        model: nn.Module,
        optimizer: Any,
        loss_fn: Any,
        opts: Options,
        on_error: ErrorSink,
    ) -> None:
        self.opts = opts
        self.model = _plan.unwrap(model)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.rank, self.world = _plan.dist_info()
        self.path = schema.rank_path(path, self.rank) if self.world > 1 else path
        named = list(self.model.named_parameters())
        self.names = [n for n, _ in named]
        self.params = _dist.local_params([p for _, p in named])  # FSDP: this rank's shards
        self.leaves = leaf_modules(self.model)
        attrs = {
            schema.ATTR_FORMAT: schema.FORMAT_NAME,
            schema.ATTR_VERSION: np.int64(schema.FORMAT_VERSION),
            schema.ATTR_WRITER: WRITER_VERSION,
            schema.ATTR_RANK: np.int64(self.rank),
            schema.ATTR_WORLD: np.int64(self.world),
        }
        self.acts: ActivationCapture | None = None
        self.probe: GradProbe | None = None
        self.opt_hooks: OptimizerHooks | None = None
        self.tracker = UpdateTracker(self.params)
        self.writer = TraceWriter(self.path, attrs, opts.swmr, opts.flush_secs)
        self.path = self.writer.path  # another name when the path is in use (see recorders._paths)
        try:
            if opts.activations:
                self.acts = ActivationCapture(self.leaves, on_error)
            probe = _plan.probe_param(self.params)
            if probe is not None and self.world == 1:
                self.probe = GradProbe(probe, on_error)
            if optimizer is not None:
                self.opt_hooks = OptimizerHooks(optimizer, self._pre_opt, self._post_opt, on_error)
        except BaseException:
            self.detach()
            self.writer.close(clean=False)
            raise
        self.batch = BatchSummaries(opts.sample_rows, opts.max_columns, opts.max_features)
        self.t0 = time.perf_counter()
        self.calls = 0  # rec.step calls so far
        self.last_step = -1
        self.layout: Layout | None = None
        self.strides: list[list[int]] = []
        self.pattern: str | None = None  # "before" / "after" optimizer.step
        self.held: tuple[torch.Tensor, int, float, list[float]] | None = None
        self.pending_update: tuple[int, torch.Tensor] | None = None
        self.in_opt_step = False
        self.upd_target: int | None = None
        self.nonfinite_done = False
        self.hist_window = -1
        self.unit_window = -1
        self.unit_last = -1
        self.unit_alive: dict[int, torch.Tensor] = {}
        self.scalar_ids: dict[str, int] = {}
        self.scalars_full = False
        self.acts_alive: list[Any] = []
        self.host = True
        self.calls_at_opt = 0  # self.calls at the last optimizer.step
        self.repeats = 0  # consecutive optimizer steps that saw more than one rec.step
        self.notices: list[str] = []  # warnings to give at the next rec.step (once each)
        self.noticed: set[str] = set()
        self._arm_capture(0)

    # ------------------------------------------------------------------ schedule

    def recorded(self, i: int) -> bool:
        return i % self.opts.every == 0

    def measured(self, i: int) -> bool:
        return self.recorded(i) and (i // self.opts.every) % self.opts.update_every == 0

    def _hist_due(self, i: int) -> bool:
        return self.recorded(i) and i // self.opts.hist_every > self.hist_window

    def _arm_capture(self, i: int) -> None:
        """Tell the forward hooks whether step ``i`` (the next forwards) is recorded, and
        whether to use the host (numpy) path: the model may have moved since."""
        self.host = not DEVICE_PATH_ON_CPU and all(p.device.type == "cpu" for p in self.params)
        if self.acts is not None:
            self.acts.host = self.host
            self.acts.reset()
            self.acts.capturing = self.recorded(i)
            self.acts.want_hist = self._hist_due(i)

    # ------------------------------------------------------------------ optimizer hooks

    def _count_calls(self) -> None:
        """Notice ``rec.step`` called more than once per ``optimizer.step`` (twice in a row)."""
        between, self.calls_at_opt = self.calls - self.calls_at_opt, self.calls
        self.repeats = self.repeats + 1 if between > 1 else 0
        if self.repeats == 2:
            self._notice("repeat", f"rec.step was called {between} times between two optimizer.step() "
                         "calls: call it once per optimisation step (each call records a row)")

    def _notice(self, key: str, text: str) -> None:
        if key not in self.noticed:
            self.noticed.add(key)
            self.notices.append(text)

    def _pre_opt(self) -> None:
        self._count_calls()
        self.in_opt_step = True  # until the post hook: a rec.step now runs inside optimizer.step(closure)
        if self.pattern is None:
            self.pattern = "after" if self.calls == 0 else "before"
        target = self.calls - 1 if self.pattern == "before" else self.calls
        self.upd_target = None
        if target >= 0 and self.measured(target):
            self.tracker.take_before()
            self.upd_target = target

    def _post_opt(self) -> None:
        self.in_opt_step = False
        target, self.upd_target = self.upd_target, None
        if target is None:
            return
        ratios = self.tracker.ratios()
        if ratios is None:
            return
        if self.pattern == "before" or (self.held is not None and self.held[1] == target):
            if self.held is not None and self.held[1] == target:
                self._put_update(self.held[0], ratios)
        else:
            self.pending_update = (target, ratios)

    def _put_update(self, row: Any, ratios: torch.Tensor) -> None:
        assert self.layout is not None
        start = self.layout.segments["params"].start + _stats.PR["update_ratio"] * len(self.params)
        if isinstance(row, np.ndarray):
            row[start : start + len(self.params)] = ratios.detach().cpu().numpy()
        else:
            row[start : start + len(self.params)] = ratios.to(row.device)

    # ------------------------------------------------------------------ step

    def step(self, loss: Any, outputs: Any, targets: Any, inputs: Any) -> None:
        while self.notices:
            warnings.warn(f"Trainwreck: {self.notices.pop(0)}", TrainwreckWarning, stacklevel=4)
        i = self.calls
        self.calls += 1
        self.last_step = i
        self._release_held()
        if self.recorded(i):
            if self.layout is None:
                self._create_layout(outputs, targets, inputs)
            self._record(i, loss, outputs, targets, inputs)
        else:
            self._check_loss(i, loss)
        if self.probe is not None:
            self.probe.reset()
        if i % self.opts.snapshot_every == 0:
            self._snapshot(i, 1 if i == 0 else 0)
        if self.opt_hooks is None and self.measured(i + 1):
            self.tracker.take_before()
        self._arm_capture(i + 1)

    def _record(self, i: int, loss: Any, outputs: Any, targets: Any, inputs: Any) -> None:
        ws = [p.detach() for p in self.params]
        gs = [p.grad for p in self.params]
        self.host = not DEVICE_PATH_ON_CPU and all(w.device.type == "cpu" for w in ws)
        if self.host:
            with np.errstate(**_host.QUIET):
                praw, row = self._host_row(ws, gs, loss, outputs, targets, inputs)
        else:
            praw, row = self._device_row(ws, gs, loss, outputs, targets, inputs)
        alive = self.acts_alive
        self._fill_update(i, row)
        lrs = self._lrs()
        t = time.perf_counter() - self.t0
        self._check_nonfinite(i, row, praw)
        if self._hist_due(i):
            self._histograms(i, ws, gs, praw)
        self._units(i, alive)
        if self.opt_hooks is not None and (self.pattern != "after" or self.in_opt_step):
            self.held = (row, i, t, lrs)  # its update comes with the next optimizer.step
        else:
            self.writer.add_row(row, i, t, lrs)

    def _host_row(self, ws, gs, loss, outputs, targets, inputs) -> tuple[np.ndarray, np.ndarray]:
        """The row as numpy, statistics computed on the host (CPU models)."""
        lay = self.layout
        assert lay is not None
        praw = _host.param_raw(ws, gs)
        mraw, self.acts_alive = self.acts.step_raw() if self.acts is not None else (None, [])
        if mraw is None:
            mraw = np.full(lay.n_modules * NMR, np.nan)
        elif isinstance(mraw, torch.Tensor):
            mraw = mraw.cpu().numpy()
        carry = self.probe.measure(host=True) if self.probe is not None else math.nan
        head = np.array([_plan.loss_value(loss), float(carry)])
        parts = [head, praw, mraw.reshape(-1), *self.batch.host_parts(outputs, targets, inputs)]
        return praw, np.concatenate(parts)

    def _device_row(self, ws, gs, loss, outputs, targets, inputs):
        """The row as a float64 tensor on the model's device: no host synchronisation."""
        lay = self.layout
        assert lay is not None
        dev = ws[0].device if ws else torch.device("cpu")
        praw = _stats.param_raw(ws, gs).to(dev)
        mraw, self.acts_alive = self.acts.step_raw() if self.acts is not None else (None, [])
        if mraw is None:
            mraw = torch.full((lay.n_modules * NMR,), math.nan, dtype=torch.float64, device=dev)
        elif isinstance(mraw, np.ndarray):  # the model moved to the device during this step
            mraw = torch.from_numpy(mraw).to(dev)
        carry = self.probe.measure() if self.probe is not None else math.nan
        parts = [
            self._loss_tensor(loss, dev),
            (carry if isinstance(carry, torch.Tensor) else _stats.dev_scalar(carry, dev)).reshape(1),
            praw,
            mraw.reshape(-1).to(dev),
            *[p.to(dev) for p in self.batch.row_parts(outputs, targets, inputs, dev)],
        ]
        return praw, torch.cat(parts)

    def _fill_update(self, i: int, row: torch.Tensor) -> None:
        if self.opt_hooks is None:
            if self.measured(i) and self.tracker.armed:
                ratios = self.tracker.ratios()
                if ratios is not None:
                    self._put_update(row, ratios)
        elif self.pending_update is not None:
            target, ratios = self.pending_update
            self.pending_update = None
            if target == i:
                self._put_update(row, ratios)

    def _release_held(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.writer.add_row(*held)

    @staticmethod
    def _loss_tensor(loss: Any, dev: torch.device) -> torch.Tensor:
        if isinstance(loss, torch.Tensor):
            t = loss.detach()
            t = t.reshape(-1)[:1] if t.numel() == 1 else t.float().mean().reshape(1)
            return t.to(device=dev, dtype=torch.float64)
        return _stats.dev_scalar(math.nan if loss is None else float(loss), dev).reshape(1)

    def _lrs(self) -> list[float]:
        if self.optimizer is None:
            return [math.nan]
        out = []
        for g in self.optimizer.param_groups:
            lr = g.get("lr", math.nan)
            out.append(float(lr.item() if isinstance(lr, torch.Tensor) else lr))
        out = out or [math.nan]
        n = self.layout.n_groups if self.layout is not None else len(out)
        if len(out) != n:
            self._notice("groups", f"the optimizer has {len(out)} param groups, {n} when recording "
                         "started: the groups (and modules) added later are not recorded")
            out = (out + [math.nan] * n)[:n]
        return out

    def log(self, name: str, value: Any) -> None:
        nid = self.scalar_ids.get(name)
        new = None
        if nid is None:
            if len(self.scalar_ids) >= schema.SCALAR_CAPACITY:
                if not self.scalars_full:
                    self.scalars_full = True
                    warnings.warn(
                        f"Trainwreck keeps at most {schema.SCALAR_CAPACITY} scalar names; "
                        f"{name!r} and later new names are not recorded",
                        TrainwreckWarning,
                        stacklevel=4,
                    )
                return
            nid = new_id = len(self.scalar_ids)
            self.scalar_ids[name] = new_id
            new = name
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().item()
        self.writer.add_scalar(max(self.last_step, 0), nid, float(value), new)

    # ------------------------------------------------------------------ non-finite values

    def _check_loss(self, i: int, loss: Any) -> None:
        """On a step without a row: a non-finite loss still triggers the snapshot (CPU)."""
        if self.nonfinite_done:
            return
        if isinstance(loss, torch.Tensor) and loss.device.type != "cpu":
            return self._check_writer_flag(i)
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else loss
        if value is not None and not math.isfinite(float(value)):
            self._nonfinite_snapshot(i)

    def _check_nonfinite(self, i: int, row: Any, praw: Any) -> None:
        if self.nonfinite_done:
            return
        if not isinstance(praw, np.ndarray) and praw.device.type != "cpu":
            return self._check_writer_flag(i)
        bad = self._field(praw, "w_nonfinite").any() or self._field(praw, "g_nonfinite").any()
        if bad or not math.isfinite(float(row[0])):
            self._nonfinite_snapshot(i)

    def _field(self, praw: Any, name: str) -> np.ndarray:
        """One raw per-parameter field of a host ``praw`` as numpy ``(P,)``."""
        p = len(self.params)
        k = _stats.PR[name]
        arr = praw if isinstance(praw, np.ndarray) else praw.numpy()
        return arr[k * p : (k + 1) * p]

    def _check_writer_flag(self, i: int) -> None:
        if self.writer.nonfinite_step is not None:
            self._nonfinite_snapshot(i)

    def _nonfinite_snapshot(self, i: int) -> None:
        self.nonfinite_done = True
        if self.layout is None:
            self._create_layout(None, None, None)
        self._snapshot(i, 3)

    # ------------------------------------------------------------------ periodic records

    def _snapshot(self, i: int, reason: int) -> None:
        if self.layout is None:
            return
        weights = [_stats.reduce_tensor(p, s) for p, s in zip(self.params, self.strides)]
        grads = [
            None if p.grad is None else _stats.reduce_tensor(p.grad, s)
            for p, s in zip(self.params, self.strides)
        ]
        self.writer.submit("snapshot", (i, reason, weights, grads))

    def _histograms(self, i: int, ws, gs, praw: torch.Tensor) -> None:
        self.hist_window = i // self.opts.hist_every
        if isinstance(praw, np.ndarray) or praw.device.type == "cpu":
            w_ok = self._field(praw, "w_nonfinite") == 0
            g_ok = self._field(praw, "g_nonfinite") == 0
        else:
            w_ok = g_ok = np.zeros(len(ws), dtype=bool)
        kinds = {
            "weight": [_stats.histogram(w, bool(ok)) for w, ok in zip(ws, w_ok)],
            "grad": [
                None if g is None or g.is_sparse else _stats.histogram(g, bool(ok)) for g, ok in zip(gs, g_ok)
            ],
            "act": list(self.acts.hists) if self.acts is not None else [None] * len(self.leaves),
        }
        self.writer.submit("hist", (i, kinds))

    def _units(self, i: int, alive: list) -> None:
        if self.layout is None:
            return
        window = i // self.opts.hist_every
        if window != self.unit_window:
            self._flush_units()
            self.unit_window = window
        for j in self.layout.unit_modules:
            a = alive[j] if j < len(alive) else None
            if a is None:
                continue
            prev = self.unit_alive.get(j)
            if prev is None or type(prev) is not type(a) or prev.shape != a.shape:
                self.unit_alive[j] = a.copy() if isinstance(a, np.ndarray) else a.clone()
            else:
                self.unit_alive[j] = prev | a
        self.unit_last = i

    def _flush_units(self) -> None:
        if self.unit_last >= 0 and self.unit_alive:
            self.writer.submit("units", (self.unit_last, dict(self.unit_alive)))
        self.unit_alive = {}
        self.unit_last = -1

    # ------------------------------------------------------------------ layout

    def _create_layout(self, outputs: Any, targets: Any, inputs: Any) -> None:
        groups = self.optimizer.param_groups if self.optimizer is not None else []
        lay, self.strides = _plan.build_layout(
            self.model, self.names, self.params, self.leaves, groups, self.acts, self.opts
        )
        _dist.annotate(lay.static, lay.group_attrs, self.params)
        self.batch.plan(lay, outputs, targets, inputs)
        names_by_id = {id(_dist.original(q)): n for n, q in zip(self.names, self.params)}
        lay.meta = _meta.all_meta(
            self.model, self.optimizer, self.loss_fn, asdict(self.opts), self.rank, self.world, names_by_id
        )
        lay.growable = lay.row_datasets() + lay.growable
        self.layout = lay
        self.writer.submit("layout", lay)

    # ------------------------------------------------------------------ close

    def close(self, clean: bool) -> None:
        try:
            if self.layout is None:
                self._create_layout(None, None, None)
            self._release_held()
            self._flush_units()
            if self.last_step >= 0:
                self._snapshot(self.last_step, 2)
        finally:
            self.writer.close(clean)
            self.detach()

    def detach(self) -> None:
        """Remove every hook and drop buffers; never touches the file."""
        for obj in (self.acts, self.probe, self.opt_hooks):
            if obj is not None:
                obj.remove()
        self.tracker.release()
