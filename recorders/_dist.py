"""Sharded parameters (FSDP2 ``fully_shard``, DTensor): each rank records the shard it holds.

The engine sees every parameter through :func:`local_params`. A plain tensor is passed
through unchanged; a DTensor becomes a :class:`LocalShard`, which answers ``detach()``,
``grad``, ``shape``, ``numel()`` with this rank's local shard, so every statistic is a
reduction over local memory and the recorder adds no collective. :func:`annotate` then
writes what the reader needs to merge the shards (``params/local_numel``, the full
shapes and element counts); the merge itself is ``analysis.shards``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from recorders import schema


def _dtensor_type() -> type | None:
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return None
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return None
    return DTensor


class LocalShard:
    """A sharded parameter seen as the part this rank holds (read-only view)."""

    is_sparse = False

    def __init__(self, param: torch.Tensor) -> None:
        self.param = param
        self.full_shape = tuple(param.shape)
        self.full_numel = param.numel()

    def _local(self) -> torch.Tensor:
        return self.param.detach().to_local()

    def detach(self) -> torch.Tensor:
        return self._local()

    @property
    def grad(self) -> torch.Tensor | None:
        g = self.param.grad
        if g is None:
            return None
        return g.to_local() if hasattr(g, "to_local") else g

    @property
    def shape(self) -> torch.Size:
        return self._local().shape

    @property
    def dtype(self) -> torch.dtype:
        return self.param.dtype

    @property
    def device(self) -> torch.device:
        return self._local().device

    @property
    def requires_grad(self) -> bool:
        return self.param.requires_grad

    def numel(self) -> int:
        return self._local().numel()

    def dim(self) -> int:
        return self._local().dim()


def local_params(params: list[Any]) -> list[Any]:
    """``params`` with every DTensor replaced by its :class:`LocalShard` (same list if none)."""
    dtensor = _dtensor_type()
    if dtensor is None or not any(isinstance(p, dtensor) for p in params):
        return params
    return [LocalShard(p) if isinstance(p, dtensor) else p for p in params]


def original(p: Any) -> Any:
    """The parameter object behind a :func:`local_params` entry (for identity checks)."""
    return p.param if isinstance(p, LocalShard) else p


def annotate(
    static: dict[str, np.ndarray], group_attrs: dict[str, dict[str, Any]], params: list[Any]
) -> None:
    """Record the full sizes beside the local ones when some parameter is sharded."""
    if not any(isinstance(p, LocalShard) for p in params):
        return
    static[schema.PARAM_LOCAL_NUMEL] = np.array([p.numel() for p in params], dtype=np.int64)
    static[schema.PARAM_NUMEL] = np.array(
        [p.full_numel if isinstance(p, LocalShard) else p.numel() for p in params], dtype=np.int64
    )
    static[schema.PARAM_SHARDED] = np.array([isinstance(p, LocalShard) for p in params], dtype=bool)
    shapes = [list(p.full_shape) if isinstance(p, LocalShard) else list(p.shape) for p in params]
    group_attrs.setdefault(schema.PARAMS, {})[schema.PARAM_SHAPES_ATTR] = json.dumps(shapes)
