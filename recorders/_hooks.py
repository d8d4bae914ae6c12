"""Observers attached to the user's objects: activation capture, the grad probe, update tracking.

Forward and optimizer hooks are registered *globally* (``register_module_forward_hook``,
``register_optimizer_step_pre_hook``) and filter on identity, so nothing is stored on the
user's modules or optimizer: ``copy.deepcopy(model)`` and ``torch.save(model)`` keep
working, and per-module hooks would also switch off ``TransformerEncoderLayer``'s
inference fast path. Every hook returns None and only reads the tensors it is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from recorders import _host, _stats

ErrorSink = Callable[[BaseException], None]

_CHANNEL_TYPES: tuple[type, ...] = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._LPPoolNd,
)
_NONNEG_TYPES: tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardsigmoid, nn.Softplus)
BUFFER_ELEMS = 1 << 16  # CPU outputs up to this size are copied to a shared buffer, reduced in groups
BUFFER_TOTAL = 1 << 22  # elements of all the group buffers together (16 MiB of float32)


def bounds_of(module: nn.Module) -> tuple[float, float] | None:
    """Output bounds of a bounded activation (Tanh, Sigmoid, Hardtanh, ...), else None."""
    if isinstance(module, (nn.Tanh, nn.Softsign)):
        return (-1.0, 1.0)
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return (0.0, 1.0)
    if isinstance(module, nn.Hardtanh) and not isinstance(module, nn.ReLU6):  # ReLU6's 0 is no saturation
        return (float(module.min_val), float(module.max_val))
    return None


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in ``named_modules()`` order."""
    return [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a module output (a tensor, or nested tuples/lists of them)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for item in obj:
            t = first_tensor(item)
            if t is not None:
                return t
    return None


class ActivationCapture:
    """Statistics of leaf-module outputs, summed over the grad-enabled forwards of a step."""

    def __init__(
        self, leaves: list[tuple[str, nn.Module]], on_error: ErrorSink, max_elems: int = 1 << 20
    ) -> None:
        self.modules = [m for _, m in leaves]
        self.max_elems = max_elems
        self.seconds = 0.0  # time spent in the hook since the last take_seconds()
        self.ran = False  # a forward was captured since the last reset()
        self._index = {id(m): j for j, m in enumerate(self.modules)}
        self._bounds = [bounds_of(m) for m in self.modules]
        self._nonneg = [isinstance(m, _NONNEG_TYPES) for m in self.modules]
        self.unit_dim: list[int | None | bool] = [False] * len(self.modules)  # False: undecided
        self.units: list[int | None] = [None] * len(self.modules)
        self.capturing = False
        self.want_hist = False
        self.host = False  # numpy statistics for CPU outputs (set by the engine)
        self._on_error = on_error
        self._channel_outputs: set[tuple[int, tuple[int, ...]]] = set()
        self._seen: dict[int, tuple] = {}  # j -> (shape, dtype, unit dim) of its last bufferable call
        self._dst: list[torch.Tensor | None] = [None] * len(self.modules)  # j's row of a group buffer
        self._groups: list[tuple[torch.Tensor, list[int], int]] = []  # (buffer, modules, unit dim)
        self._planned = False
        self.reset()
        self._handle: Any = None

    def arm(self, on: bool) -> None:
        """Attach the global forward hook for a measured step, detach it otherwise: an
        unmeasured step's forwards then run with no hook at all."""
        self.capturing = on
        if on and self._handle is None:
            self._handle = nn.modules.module.register_module_forward_hook(self._hook)
        elif not on and self._handle is not None:
            self._handle.remove()
            self._handle = None

    def take_seconds(self) -> float:
        out, self.seconds = self.seconds, 0.0
        return out

    def reset(self) -> None:
        """Forget what the current step captured."""
        self.ran = False
        n = len(self.modules)
        self.raws: list[list[torch.Tensor]] = [[] for _ in range(n)]
        self.alive: list[torch.Tensor | None] = [None] * n
        self.hists: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n
        self._mixed_units = [False] * n
        self._filled = [False] * n
        self._channel_outputs.clear()

    def remove(self) -> None:
        """Detach the global hook."""
        self.arm(False)

    @property
    def bounded(self) -> list[bool]:
        return [b is not None for b in self._bounds]

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if torch.compiler.is_compiling():
            return None  # never traced into a compiled graph
        j = self._index.get(id(module))
        if j is None or not self.capturing or not torch.is_grad_enabled():
            return None
        t0 = time.perf_counter()
        try:
            self._capture(j, module, inputs, output)
        except Exception as exc:  # never let the recorder break a forward pass
            self._on_error(exc)
        self.seconds += time.perf_counter() - t0
        return None

    def _capture(self, j: int, module: nn.Module, inputs: Any, output: Any) -> None:
        t = first_tensor(output)
        if t is None or not t.is_floating_point():
            return
        self.ran = True
        if self.unit_dim[j] is False:
            self.unit_dim[j] = self._decide_units(module, inputs, t)
            self.units[j] = None if self.unit_dim[j] is None else int(t.shape[self.unit_dim[j]])
        ud = self.unit_dim[j]
        if ud == 1 and t.dim() >= 3:
            self._channel_outputs.add((t.data_ptr(), tuple(t.shape)))
        if ud is not None and (t.dim() < 2 or t.shape[ud] != self.units[j]):
            ud = None  # this call's shape does not match the layout
            self._mixed_units[j] = True
        t = self._bounded(t)
        if self.host and t.is_cpu:
            dst = self._dst[j]
            if dst is not None and not self._filled[j] and dst.shape == t.shape and dst.dtype == t.dtype:
                dst.copy_(t.detach())  # reduced with the other outputs of its shape in step_raw
                self._filled[j] = True
                return
            if ud is not None and t.dim() >= 2 and t.numel() <= BUFFER_ELEMS and t.dtype in _host.FAST:
                self._seen[j] = (tuple(t.shape), t.dtype, ud)
            with np.errstate(**_host.QUIET):
                raw, alive = _host.act_call_raw(t, ud, self._bounds[j], self._nonneg[j])
        else:
            raw, alive = _stats.act_call_raw(t, ud, self._bounds[j], self._nonneg[j])
        self.raws[j].append(raw)
        if alive is not None:
            prev = self.alive[j]
            self.alive[j] = alive if prev is None or type(prev) is not type(alive) else prev | alive
        if self.want_hist and self.hists[j] is None:
            self.hists[j] = _stats.histogram(t)

    def _bounded(self, t: torch.Tensor) -> torch.Tensor:
        """The first rows (along dim 0) of ``t``, at most ``max_elems`` elements in all."""
        n = t.numel()
        if n <= self.max_elems or t.dim() < 2 or t.shape[0] < 2:
            return t
        keep = max(1, self.max_elems * t.shape[0] // n)
        return t[:keep]

    def _decide_units(self, module: nn.Module, inputs: Any, t: torch.Tensor) -> int | None:
        """Unit axis: channels (dim 1) of feature maps, else the last dim."""
        if t.dim() < 2:
            return None
        if t.dim() >= 3:
            if isinstance(module, _CHANNEL_TYPES):
                return 1
            x = first_tensor(inputs)
            if (
                isinstance(x, torch.Tensor)
                and tuple(x.shape) == tuple(t.shape)
                and (x.data_ptr(), tuple(x.shape)) in self._channel_outputs
            ):
                return 1  # an elementwise module (ReLU, Dropout...) on a feature map
        return -1

    def step_raw(self) -> tuple[Any, list[Any]]:
        """Raw rows of this step, ``(M, len(MODULE_RAW))`` float64 (numpy in host mode), NaN
        where a module did not run, and each module's unit-alive mask; None if none ran."""
        if self.host:
            self._reduce_groups()
        rows: list[Any] = []
        alive_out: list[Any] = []
        for j, raws in enumerate(self.raws):
            alive = None if self._mixed_units[j] else self.alive[j]
            alive_out.append(alive)
            if not raws:
                rows.append(None)
            elif self.host:
                with np.errstate(**_host.QUIET):
                    rows.append(_host.combine_calls([_np(r) for r in raws], _np_or_none(alive)))
            else:
                rows.append(_stats.combine_calls(raws, alive))
        if self.host and not self._planned and self._seen:
            self._plan_groups()
        if all(r is None for r in rows):
            return None, alive_out
        nan_row = np.full(len(_stats.MODULE_RAW), np.nan)
        if self.host:
            return np.stack([nan_row if r is None else r for r in rows]), alive_out
        dev = next(r.device for r in rows if r is not None)
        nan_t = torch.full((len(_stats.MODULE_RAW),), math.nan, dtype=torch.float64, device=dev)
        return torch.stack([nan_t if r is None else r.to(dev) for r in rows]), alive_out

    def _plan_groups(self) -> None:
        """After the first step with host captures: one buffer per output shape seen once per
        step, so that later steps copy each output there and reduce a shape's at once."""
        self._planned = True
        by: dict[tuple, list[int]] = {}
        for j, key in self._seen.items():
            if len(self.raws[j]) == 1 and not self._mixed_units[j]:
                by.setdefault(key, []).append(j)
        total = 0
        for (shape, dtype, ud), js in by.items():
            if len(js) < 2:
                continue  # alone: reduced as it comes, no copy
            total += len(js) * math.prod(shape)
            if total > BUFFER_TOTAL:
                break
            buf = torch.empty((len(js), *shape), dtype=dtype)
            for r, j in enumerate(js):
                self._dst[j] = buf[r]
            self._groups.append((buf, js, ud))

    def _reduce_groups(self) -> None:
        """The buffered outputs of this step, reduced group by group into ``raws``/``alive``."""
        for buf, js, ud in self._groups:
            rows = [r for r, j in enumerate(js) if self._filled[j]]
            if not rows:
                continue
            block = buf if len(rows) == len(js) else buf[rows]
            mods = [js[r] for r in rows]
            with np.errstate(**_host.QUIET):
                raw, alive = _host.act_group_raw(
                    block, ud, [self._bounds[j] for j in mods], [self._nonneg[j] for j in mods]
                )
            for r, j in enumerate(mods):
                self.raws[j].insert(0, raw[r])
                prev = self.alive[j]
                self.alive[j] = alive[r] if prev is None or type(prev) is not np.ndarray else prev | alive[r]
                if self.want_hist and self.hists[j] is None:
                    self.hists[j] = _stats.histogram(block[r])


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _np_or_none(x: Any) -> np.ndarray | None:
    return None if x is None else _np(x)


class GradProbe:
    """Sums the gradients flowing into one small parameter between two ``rec.step`` calls."""

    def __init__(self, param: torch.nn.Parameter, on_error: ErrorSink) -> None:
        self.param = param
        self.incoming: torch.Tensor | None = None
        self.enabled = True
        self.armed = False
        self._on_error = on_error
        self._handle: Any = None

    def arm(self, on: bool) -> None:
        """Attach the gradient hook for a measured step's backward, detach it otherwise."""
        self.reset()
        self.armed = on
        if on and self._handle is None:

            def hook(grad: torch.Tensor) -> None:
                return self._hook(grad)

            self._handle = self.param.register_hook(torch.utils.hooks.unserializable_hook(hook))
        elif not on and self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, grad: torch.Tensor) -> None:
        if not self.enabled:
            return None
        try:
            g = grad.detach()
            g = g.to_dense() if g.is_sparse else g
            if self.incoming is None:
                self.incoming = g.to(torch.float64, copy=True)
            else:
                self.incoming.add_(g)
        except Exception as exc:
            self._on_error(exc)
        return None

    def measure(self, host: bool = False) -> torch.Tensor | float:
        """``||g - sum incoming|| / ||g||`` (0 when g is a rescaled sum, e.g. clipping)."""
        g = self.param.grad
        s = self.incoming
        if g is None or s is None:
            return math.nan
        if host and g.device.type == "cpu":
            return _host.grad_carry(g.detach(), s)
        g = g.detach()
        gd = (g.to_dense() if g.is_sparse else g).to(torch.float64).reshape(-1)
        s = s.reshape(-1)
        gn = torch.linalg.vector_norm(gd)
        sn = torch.linalg.vector_norm(s)
        carry = torch.linalg.vector_norm(gd - s) / gn
        collinear = torch.dot(gd, s) >= (1 - 1e-6) * gn * sn
        return torch.where(collinear & (sn > 0), torch.zeros_like(carry), carry)

    def reset(self) -> None:
        self.incoming = None

    def remove(self) -> None:
        self.enabled = False
        self.arm(False)


class UpdateTracker:
    """``||w_after - w_before|| / ||w_before||`` per parameter, from a copy of the weights.

    A tensor larger than the snapshot limit is measured on its strided snapshot view
    (``strides``, see ``_stats.snapshot_strides``): the same elements before and after, a
    fraction of the memory traffic of a full copy."""

    def __init__(self, params: list[torch.nn.Parameter], strides: list[list[int]] | None = None) -> None:
        self.params = params
        self.strides = strides or [[1] * len(p.shape) for p in params]
        self._before: list[torch.Tensor] | None = None
        self._before_norm: torch.Tensor | None = None

    def _weights(self) -> list[torch.Tensor]:
        out = []
        for p, s in zip(self.params, self.strides):
            w = p.detach()
            if any(k != 1 for k in s) and not w.is_sparse:
                w = w[:: s[0]] if w.dim() == 1 else w.reshape(w.shape[0], -1)[:: s[0], :: s[1]]
            out.append(w)
        return out

    def take_before(self) -> None:
        """Copy the current weights (one pass over them) and their norms."""
        ws = self._weights()
        if not ws:  # a model without parameters: nothing moves
            self._before_norm = None
            return
        if self._before is None or any(
            b.shape != w.shape or b.dtype != w.dtype or b.device != w.device for b, w in zip(self._before, ws)
        ):
            self._before = [torch.empty_like(w) for w in ws]
        torch._foreach_copy_(self._before, ws)
        norms = torch._foreach_norm(self._before) if ws else []
        self._before_norm = torch.stack(norms).to(torch.float64) if norms else None

    @property
    def armed(self) -> bool:
        return self._before_norm is not None

    def ratios(self) -> torch.Tensor | None:
        """Float64 ``(P,)`` ratios against the last :meth:`take_before`; disarms."""
        if self._before is None or self._before_norm is None:
            return None
        ws = self._weights()
        torch._foreach_sub_(self._before, ws)
        delta = torch.stack(torch._foreach_norm(self._before)).to(torch.float64)
        out = delta / self._before_norm
        self._before_norm = None
        return out

    def release(self) -> None:
        self._before = None
        self._before_norm = None


class OptimizerHooks:
    """Global optimizer step pre/post hooks that call back for one optimizer only."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        pre: Callable[[], None],
        post: Callable[[], None],
        on_error: ErrorSink,
    ) -> None:
        self._opt = optimizer
        self._pre, self._post, self._on_error = pre, post, on_error
        self.enabled = True
        from torch.optim import optimizer as reg

        self._handles = [
            reg.register_optimizer_step_pre_hook(self._pre_hook),
            reg.register_optimizer_step_post_hook(self._post_hook),
        ]

    def _pre_hook(self, opt: Any, args: Any, kwargs: Any) -> None:
        if opt is self._opt and self.enabled:
            try:
                self._pre()
            except Exception as exc:
                self._on_error(exc)
        return None

    def _post_hook(self, opt: Any, args: Any, kwargs: Any) -> None:
        if opt is self._opt and self.enabled:
            try:
                self._post()
            except Exception as exc:
                self._on_error(exc)
        return None

    def remove(self) -> None:
        self.enabled = False
        for h in self._handles:
            h.remove()
