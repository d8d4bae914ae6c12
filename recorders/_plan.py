"""What the first recorded step creates, read off the model: the trace's static layout.

Also the small introspection helpers the engine needs (unwrapping DDP/compile wrappers,
the DDP rank, the grad probe's parameter).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from recorders import _dist, _stats, schema
from recorders._hooks import ActivationCapture
from recorders._layout import Growable, Layout
from recorders._options import Options

NPR = len(_stats.PARAM_RAW)
NMR = len(_stats.MODULE_RAW)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / DataParallel / torch.compile wrappers."""
    for _ in range(4):
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        if type(model).__name__ in ("DistributedDataParallel", "DataParallel") and isinstance(
            getattr(model, "module", None), nn.Module
        ):
            model = model.module
            continue
        break
    return model


def compiled(model: nn.Module) -> bool:
    """Whether ``model`` (or a module in it) is a ``torch.compile`` wrapper or compiled in place."""
    if getattr(model, "_orig_mod", None) is not None:
        return True
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules())


def dist_info() -> tuple[int, int]:
    """(rank, world_size) of an initialised torch.distributed job, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def loss_value(loss: Any) -> float:
    """The loss as a Python float (the mean if it has several elements)."""
    if isinstance(loss, torch.Tensor):
        t = loss.detach()
        return float(t) if t.numel() == 1 else float(t.float().mean())
    return math.nan if loss is None else float(loss)


def probe_param(params: list[nn.Parameter]) -> nn.Parameter | None:
    """The smallest trainable, initialised parameter."""
    cands = [p for p in params if p.requires_grad and not isinstance(p, nn.parameter.UninitializedParameter)]
    return min(cands, key=lambda p: p.numel()) if cands else None


def build_layout(
    model: nn.Module,
    names: list[str],
    params: list[nn.Parameter],
    leaves: list[tuple[str, nn.Module]],
    groups: list[dict[str, Any]],
    acts: ActivationCapture | None,
    opts: Options,
) -> tuple[Layout, list[list[int]]]:
    """The layout (row segments for the parameters and modules, static index datasets,
    snapshots, histograms, liveness) and each parameter's snapshot strides. The batch
    groups and the per-step row datasets are added by the caller."""
    p, m = len(params), len(leaves)
    lay = Layout(
        n_params=p,
        n_modules=m,
        n_groups=max(len(groups), 1),
        numel=np.array([q.numel() for q in params], dtype=np.int64),
        bounded=np.array(acts.bounded if acts else [False] * m, dtype=bool),
    )
    lay.add_segment("loss", 1)
    lay.add_segment("carry", 1)
    lay.add_segment("params", NPR * p)
    lay.add_segment("modules", NMR * m)
    _static(lay, model, names, params, leaves, groups)
    strides = _growables(lay, params, acts, opts)
    return lay, strides


def _static(lay, model, names, params, leaves, groups) -> None:
    in_opt = {id(q) for g in groups for q in g.get("params", [])}
    owner = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = mname
    lay.static = {
        schema.PARAM_NAMES: np.array(names, dtype=object),
        schema.PARAM_MODULE: np.array([owner.get(n, "") for n in names], dtype=object),
        schema.PARAM_NUMEL: lay.numel,
        schema.PARAM_REQUIRES_GRAD: np.array([q.requires_grad for q in params], bool),
        schema.PARAM_IN_OPTIMIZER: np.array([id(_dist.original(q)) in in_opt for q in params], bool),
        schema.MODULE_NAMES: np.array([n for n, _ in leaves], dtype=object),
        schema.MODULE_TYPES: np.array([type(q).__name__ for _, q in leaves], dtype=object),
        schema.SCALAR_NAMES: np.zeros(schema.SCALAR_CAPACITY, dtype="S128"),
    }
    shapes = [list(q.shape) for q in params]
    lay.group_attrs[schema.PARAMS] = {schema.PARAM_SHAPES_ATTR: json.dumps(shapes)}


def _growables(lay: Layout, params, acts, opts: Options) -> list[list[int]]:
    g = [
        Growable(schema.SCALAR_STEP, "int64"),
        Growable(schema.SCALAR_ID, "int32"),
        Growable(schema.SCALAR_VALUE, "float64"),
        Growable(schema.SNAP_STEP, "int64"),
        Growable(schema.SNAP_REASON, "int8"),
        Growable(schema.HIST_STEP, "int64"),
        Growable(schema.UNIT_STEP, "int64"),
    ]
    strides = []
    for i, q in enumerate(params):
        shape = tuple(q.shape)
        s = _stats.snapshot_strides(shape, opts.snapshot_max_elems)
        strides.append(s)
        attrs = {"full_shape": json.dumps(list(shape)), "stride": json.dumps(s)}
        tail = _stats.reduced_shape(shape, s)
        for grp in (schema.SNAP_WEIGHT, schema.SNAP_GRAD):
            g.append(Growable(f"{grp}/{schema.param_key(i)}", "float32", tail, attrs, rows=1))
        lay.snapshot_keys.append(i)
    for kind, n in (("weight", lay.n_params), ("grad", lay.n_params), ("act", lay.n_modules)):
        g.append(Growable(f"{schema.HIST}/{kind}", "int32", (n, schema.HIST_BINS)))
        g.append(Growable(f"{schema.HIST}/{kind}_range", "float32", (n, 2)))
    if acts is not None:
        for j, units in enumerate(acts.units):
            if units:
                lay.unit_modules.append(j)
                g.append(Growable(f"{schema.UNIT_ALIVE}/{schema.module_key(j)}", "uint8", (units,)))
    lay.growable = g
    return strides


class SnapshotBudget:
    """Periodic snapshots under a total byte budget: every ``every`` steps until half the
    budget is used, then log-spaced (a step at least twice the previous one's), and none
    once the rest would not leave room for the last and the non-finite snapshots."""

    def __init__(self, every: int, max_bytes: int) -> None:
        self.every = every
        self.max_bytes = max_bytes
        self.size = 0  # bytes of one snapshot (weights + grads), set with the layout
        self.used = 0
        self.last = 0

    def take(self, i: int) -> bool:
        """Whether the periodic (or first) snapshot due at step ``i`` is taken; counts it."""
        if i > 0:
            if self.used + 3 * self.size > self.max_bytes:
                return False
            if 2 * self.used >= self.max_bytes and i < 2 * self.last:
                return False
        self.used += self.size
        self.last = i
        return True


def snapshot_bytes(params: list, strides: list[list[int]]) -> int:
    """Bytes one snapshot writes: float32 weights and grads, reduced by ``strides``."""
    total = 0
    for q, s in zip(params, strides):
        total += 8 * math.prod(_stats.reduced_shape(tuple(q.shape), s))
    return total
