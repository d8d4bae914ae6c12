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

from recorders import _cadence, _dist, _host, _meta, _plan, _stats, _summary, schema
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
        strides = [_stats.snapshot_strides(tuple(q.shape), opts.snapshot_max_elems) for q in self.params]
        self.tracker = UpdateTracker(self.params, strides)
        self.writer = TraceWriter(self.path, attrs, opts.swmr, opts.flush_secs)
        self.path = self.writer.path  # another name when the path is in use (see recorders._paths)
        try:
            if opts.activations and _plan.compiled(model):
                warnings.warn(
                    "Trainwreck records no activation statistics of a torch.compile'd model "
                    "(compiled graphs run without module hooks): modules/ stays NaN and "
                    "steps/measured says so; everything else is recorded.",
                    TrainwreckWarning,
                    stacklevel=4,
                )
            elif opts.activations:
                self.acts = ActivationCapture(self.leaves, on_error, opts.act_max_elems)
            probe = _plan.probe_param(self.params)
            if probe is not None and self.world == 1:
                self.probe = GradProbe(probe, on_error)
            if optimizer is not None:
                self.opt_hooks = OptimizerHooks(optimizer, self._pre_opt, self._post_opt, on_error)
        except BaseException:
            self.detach()
            self.writer.close(clean=False)
            raise
        self.batch = BatchSummaries(opts.sample_rows, opts.max_columns, opts.max_features, opts.batch_rows)
        self.cadence = _cadence.Cadence(opts.budget, opts.dense_start, opts.flight_steps, opts.update_every)
        self.flags = 0  # groups measured at the current step (decided before its forward)
        self.snap_budget = _plan.SnapshotBudget(opts.snapshot_every, opts.snapshot_bytes)
        self.t0 = time.perf_counter()
        self.calls = 0  # rec.step calls so far
        self.last_step = -1
        self.layout: Layout | None = None
        self.strides: list[list[int]] = []
        self.pattern: str | None = None  # "before" / "after" optimizer.step
        self.held: tuple | None = None
        self.pending_update: tuple[int, torch.Tensor] | None = None
        self.in_opt_step = False
        self.upd_target: int | None = None
        self.nonfinite_done = False
        self.hist_window = -1
        self.hist_now = False  # the planned step takes histograms
        self.unit_window = -1
        self.unit_last = -1
        self.unit_alive: dict[int, torch.Tensor] = {}
        self.hook_secs = 0.0
        self.last_flags = 0
        self.acts_ever = False  # the forward hooks captured something once
        self.no_forward = 0  # measured steps with a loss but no forward seen
        self.scalar_ids: dict[str, int] = {}
        self.scalars_full = False
        self.acts_alive: list[Any] = []
        self.host = True
        self._nan_cache: dict[tuple, Any] = {}
        self.calls_at_opt = 0  # self.calls at the last optimizer.step
        self.repeats = 0  # consecutive optimizer steps that saw more than one rec.step
        self.notices: list[str] = []  # warnings to give at the next rec.step (once each)
        self.noticed: set[str] = set()
        self.fast = False  # the next rec.step takes fast_step (see _set_fast)
        self._arm_capture(0)

    # ------------------------------------------------------------------ schedule

    def recorded(self, i: int) -> bool:
        return i % self.opts.every == 0

    def measured(self, i: int) -> bool:
        """Whether step ``i`` measures its update ratio (known once its plan is made: the
        step just recorded, or the next one)."""
        if i == self.calls:
            return bool(self.flags & _cadence.UPDATE)
        return i == self.calls - 1 and bool(self.last_flags & _cadence.UPDATE)

    def _hist_due(self, i: int) -> bool:
        """Histograms on the first recorded step of each ``hist_every`` window (measured in
        full: the detectors also count on these evenly spaced measured rows)."""
        return self.recorded(i) and i // self.opts.hist_every > self.hist_window

    def _arm_capture(self, i: int) -> None:
        """Decide what step ``i`` measures and arm the hooks for it (the next forwards):
        the forward hooks and the grad probe are attached only for a measured step."""
        p0 = self.params[0] if self.params else None
        self.host = not DEVICE_PATH_ON_CPU and (p0 is None or p0.device.type == "cpu")
        flags = self.cadence.plan(i) if i % self.opts.every == 0 else 0
        hist = self.hist_now = self._hist_due(i)
        if hist:
            flags |= _cadence.PARAMS | _cadence.MODULES
        self.flags = flags
        on = bool(flags & _cadence.MODULES)
        acts = self.acts
        if acts is not None and (on or acts.capturing):
            acts.host = self.host
            acts.reset()
            acts.want_hist = hist
            acts.arm(on)
        probe = self.probe
        if probe is not None and (on or probe.armed):
            probe.arm(on)

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
        if self.calls - self.calls_at_opt != 1 or self.repeats:
            self._count_calls()
        else:  # the usual case of _count_calls: one rec.step since the last optimizer.step
            self.calls_at_opt = self.calls
        self.in_opt_step = True  # until the post hook: a rec.step now runs inside optimizer.step(closure)
        if self.pattern is None:
            self.pattern = "after" if self.calls == 0 else "before"
        target = self.calls - 1 if self.pattern == "before" else self.calls
        self.upd_target = None
        if (self.flags | self.last_flags) & _cadence.UPDATE and target >= 0 and self.measured(target):
            t = time.perf_counter()
            self.tracker.take_before()
            self.upd_target = target
            self.hook_secs += time.perf_counter() - t

    def _post_opt(self) -> None:
        self.in_opt_step = False
        target, self.upd_target = self.upd_target, None
        if target is None:
            return
        t = time.perf_counter()
        ratios = self.tracker.ratios()
        self.hook_secs += time.perf_counter() - t
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
        if isinstance(row, list):  # host row parts: [loss, carry, praw, mraw]
            if row[2] is not None:
                k = _stats.PR["update_ratio"] * len(self.params)
                row[2][k : k + len(self.params)] = ratios.detach().cpu().numpy()
        elif isinstance(row, np.ndarray):
            row[start : start + len(self.params)] = ratios.detach().cpu().numpy()
        else:
            row[start : start + len(self.params)] = ratios.to(row.device)

    # ------------------------------------------------------------------ step

    def step(self, loss: Any, outputs: Any, targets: Any, inputs: Any) -> None:
        while self.notices:
            warnings.warn(f"Trainwreck: {self.notices.pop(0)}", TrainwreckWarning, stacklevel=3)
        t_in = time.perf_counter()
        self.cadence.enter(t_in)
        i = self.calls
        self.calls += 1
        self.last_step = i
        if self.held is not None:
            self._release_held()
        flags = self.flags
        setup, typical = self.layout is None, not self.hist_now
        if self.recorded(i):
            if self.layout is None:
                self._create_layout(outputs, targets, inputs)
            flags = self._record(i, loss, outputs, targets, inputs, flags)
        else:
            self._check_loss(i, loss)
        self.last_flags = flags
        if i % self.opts.snapshot_every == 0 and self.snap_budget.take(i):
            self._snapshot(i, 1 if i == 0 else 0)
        hooks = self.acts.take_seconds() if self.acts is not None else 0.0
        hooks += self.hook_secs
        self.hook_secs = 0.0
        self.cadence.leave(i, time.perf_counter() - t_in + hooks, flags, typical, setup)
        self._arm_capture(i + 1)
        if self.opt_hooks is None and self.flags & _cadence.UPDATE:
            self.tracker.take_before()  # the weights before the next step's change
        self._set_fast(i + 1)

    def fast_step(self, loss: Any, outputs: Any, targets: Any, inputs: Any) -> None:
        """``rec.step`` of a planned unmeasured CPU row (``self.fast``): the loss, the batch
        references, one append, one cadence call. An alarming loss (or a notice to give) goes
        through :meth:`step`, which then measures. Few calls: each costs ~1 us here, between
        the training's own code."""
        t_in = time.perf_counter()
        if type(loss) is torch.Tensor and loss.numel() == 1:
            value = loss.item()
        else:
            value = _plan.loss_value(loss)
        cad = self.cadence
        if value > cad.alarm_level or not -math.inf < value < math.inf or self.notices:
            self.step(loss, outputs, targets, inputs)
            return
        i = self.calls
        self.calls = i + 1
        self.last_step = i
        if self.held is not None:
            self._release_held()
        batch = self.batch.copies(outputs, targets, inputs)
        self.writer.add_row([value, math.nan, None, None], i, t_in - self.t0, self._lrs(), 0, batch)
        self.last_flags = 0
        opts = self.opts
        if i // opts.hist_every != self.unit_window:
            self._units(i, [])
        if i % opts.snapshot_every == 0 and self.snap_budget.take(i):
            self._snapshot(i, 0)
        flags = cad.fast_row(i, t_in, time.perf_counter(), value)
        nxt = i + 1
        if opts.every == 1 and not flags and nxt // opts.hist_every <= self.hist_window:
            return  # the next step is another fast one: self.flags and self.fast stay as they are
        self._plan_next(nxt, flags)

    def _plan_next(self, nxt: int, flags: int) -> None:
        """After an unmeasured row: plan the next step (``flags``: what the cadence plans for
        it, if recorded), arming hooks only when it measures."""
        opts = self.opts
        recorded = nxt % opts.every == 0
        flags = flags if recorded else 0
        if flags or (recorded and nxt // opts.hist_every > self.hist_window):
            self._arm_capture(nxt)
            if self.flags & _cadence.UPDATE and self.opt_hooks is None:
                self.tracker.take_before()
        else:
            self.flags = 0
            self.hist_now = False
        self._set_fast(nxt)

    def _set_fast(self, nxt: int) -> None:
        """Whether step ``nxt`` can take :meth:`fast_step` (an unmeasured recorded CPU row)."""
        self.fast = (
            not self.flags and self.host and self.layout is not None and nxt % self.opts.every == 0
        )

    def _record(self, i: int, loss: Any, outputs: Any, targets: Any, inputs: Any, flags: int) -> int:
        if flags & _cadence.PARAMS:
            self.host = not DEVICE_PATH_ON_CPU and all(w.device.type == "cpu" for w in self.params)
        value, flags = self._watch(i, loss, flags)
        want_params = bool(flags & _cadence.PARAMS)
        ws = [p.detach() for p in self.params] if want_params else []
        gs = [p.grad for p in self.params] if want_params else []
        if self.host:
            with np.errstate(**_host.QUIET):
                praw, row, batch = self._host_row(ws, gs, value, outputs, targets, inputs, flags)
        else:
            praw, row = self._device_row(ws, gs, loss, outputs, targets, inputs, flags)
            batch = None
        if praw is not None and self.host:
            total = self._total_grad_norm(praw)
            if total is not None:
                self.cadence.watch_grad_norm(i, total)
        flags = self._forward_seen(loss, flags)
        alive = self.acts_alive
        self._fill_update(i, row)
        lrs = self._lrs()
        t = time.perf_counter() - self.t0
        if praw is not None:
            self._check_nonfinite(i, row, praw)
            if self.hist_now:
                self._histograms(i, ws, gs, praw)
        self._units(i, alive)
        record = (row, i, t, lrs, flags, batch)
        if self.opt_hooks is not None and (self.pattern != "after" or self.in_opt_step):
            self.held = record  # its update comes with the next optimizer.step
        else:
            self.writer.add_row(*record)
        return flags

    def _watch(self, i: int, loss: Any, flags: int) -> tuple[float, int]:
        """The flight recorder's look at the loss (host) or at the writer's NaN flag (device)."""
        value = math.nan
        if self.host:
            value = _plan.loss_value(loss)
            if self.cadence.watch_loss(i, value) or not math.isfinite(value):
                flags |= _cadence.PARAMS  # the weights and grads of the alarming step itself
        elif self.writer.nonfinite_step is not None and not self.cadence.flights:
            self.cadence.start_flight(i, forced=True)  # the writer saw a NaN in an earlier row
        return value, flags

    def _forward_seen(self, loss: Any, flags: int) -> int:
        """Drop the modules flag when the hooks saw no forward (a compiled graph, or none)."""
        if self.acts is None:
            return flags & ~_cadence.MODULES
        if not flags & _cadence.MODULES:
            return flags
        if self.acts.ran:
            self.acts_ever = True
            return flags
        self._warn_no_forward(loss)
        return flags & ~_cadence.MODULES

    def _warn_no_forward(self, loss: Any) -> None:
        """Two measured steps with a loss that has a graph but no module forward seen, and
        none ever: the model runs compiled (given to the recorder before torch.compile).
        Activation capture is then switched off for good, so that its global hook no
        longer makes torch warn or recompile."""
        if self.acts_ever or getattr(loss, "grad_fn", None) is None:
            return
        self.no_forward += 1
        if self.no_forward < 2 or self.acts is None:
            return
        self.acts.remove()
        self.acts = None
        warnings.warn(
            "Trainwreck saw a loss but no module forward: the model runs under torch.compile, "
            "whose graphs run without module hooks. Activation statistics (modules/) stay NaN "
            "and steps/measured says so; everything else is recorded. Give TraceRecorder the "
            "compiled model (or compile in place, model.compile()) to skip the module hook "
            "altogether.",
            TrainwreckWarning,
            stacklevel=6,
        )

    def _total_grad_norm(self, praw: np.ndarray) -> float | None:
        """The norm of all gradients together (None without any gradient)."""
        g = self._field(praw, "g_norm")[self._field(praw, "g_present") > 0]
        if not g.size:
            return None
        with np.errstate(**_host.QUIET):
            return float(np.sqrt(np.dot(g, g)))

    def _nan(self, n: int, dev: Any = None) -> Any:
        """A cached NaN block of ``n`` entries (numpy, or a tensor on ``dev``): never written to."""
        key = (n, str(dev))
        out = self._nan_cache.get(key)
        if out is None:
            if dev is None:
                out = np.full(n, np.nan)
            else:
                out = torch.full((n,), math.nan, dtype=torch.float64, device=dev)
            self._nan_cache[key] = out
        return out

    def _host_row(self, ws, gs, value: float, outputs, targets, inputs, flags: int):
        """The core row as parts ``[loss, carry, raw parameter sums or None, raw module sums
        or None]`` (the writer fills NaN for None) and the batch copies it summarises."""
        lay = self.layout
        assert lay is not None
        praw = _host.param_raw(ws, gs) if flags & _cadence.PARAMS else None
        mraw = None
        if flags & _cadence.MODULES and self.acts is not None:
            mraw, self.acts_alive = self.acts.step_raw()
        else:
            self.acts_alive = []
        if isinstance(mraw, torch.Tensor):
            mraw = mraw.cpu().numpy()
        carry = self.probe.measure(host=True) if self.probe is not None and self.probe.armed else math.nan
        parts = [value, float(carry), praw, None if mraw is None else mraw.reshape(-1)]
        return praw, parts, self.batch.copies(outputs, targets, inputs)

    def _device_row(self, ws, gs, loss, outputs, targets, inputs, flags: int):
        """The row as a float64 tensor on the model's device: no host synchronisation."""
        lay = self.layout
        assert lay is not None
        dev = self.params[0].device if self.params else torch.device("cpu")
        praw = _stats.param_raw(ws, gs).to(dev) if flags & _cadence.PARAMS else None
        mraw = None
        if flags & _cadence.MODULES and self.acts is not None:
            mraw, self.acts_alive = self.acts.step_raw()
        else:
            self.acts_alive = []
        if isinstance(mraw, np.ndarray):  # the model moved to the device during this step
            mraw = torch.from_numpy(mraw).to(dev)
        carry = self.probe.measure() if self.probe is not None and self.probe.armed else math.nan
        parts = [
            self._loss_tensor(loss, dev),
            (carry if isinstance(carry, torch.Tensor) else _stats.dev_scalar(carry, dev)).reshape(1),
            self._nan(NPR * lay.n_params, dev) if praw is None else praw,
            self._nan(NMR * lay.n_modules, dev) if mraw is None else mraw.reshape(-1).to(dev),
            *[p.to(dev) for p in self.batch.row_parts(outputs, targets, inputs, dev)],
        ]
        return praw, torch.cat(parts)

    def _fill_update(self, i: int, row: torch.Tensor) -> None:
        if self.opt_hooks is None:
            if self.flags & _cadence.UPDATE and self.tracker.armed:
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
        out = [g.get("lr", math.nan) for g in self.optimizer.param_groups]
        lay = self.layout
        if lay is not None and len(out) == lay.n_groups:
            for lr in out:
                if type(lr) is not float:
                    break
            else:
                return out  # the usual case: float learning rates, the groups as at the start
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
        loss = row[0] if isinstance(row, list) else float(row[0])
        if bad or not math.isfinite(loss):
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
        if not alive:
            return
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
        self.snap_budget.size = _plan.snapshot_bytes(self.params, self.strides)
        _dist.annotate(lay.static, lay.group_attrs, self.params)
        self.batch.plan(lay, outputs, targets, inputs)
        names_by_id = {id(_dist.original(q)): n for n, q in zip(self.names, self.params)}
        lay.meta = _meta.all_meta(
            self.model, self.optimizer, self.loss_fn, asdict(self.opts), self.rank, self.world, names_by_id
        )
        lay.batch_block = self.batch.block
        lay.summary_block = self.opts.summary_block
        lay.growable = lay.row_datasets() + lay.growable + _summary.growables(lay, self.opts.summary_block)
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
