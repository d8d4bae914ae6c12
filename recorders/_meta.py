"""Run metadata as JSON text: model tree, optimizer, loss, environment, options.

Everything here is best-effort description for the reader: values that are not plain
numbers, strings or tuples of them are rendered with ``repr`` or left out, never pickled.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
from typing import Any

import numpy as np
import torch
from torch import nn

_SIMPLE = (int, float, bool, str, type(None))


def _simple(value: Any) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    return isinstance(value, tuple) and all(isinstance(v, _SIMPLE) for v in value)


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps(allow_nan=False)`` accepts."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return json_safe(value.detach().cpu().item())
        return [json_safe(v) for v in value.detach().cpu().reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, torch.dtype | torch.device):
        return str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return repr(value)


def dumps(value: Any) -> str:
    return json.dumps(json_safe(value), allow_nan=False)


def module_args(module: nn.Module) -> dict[str, Any]:
    """Public int/float/bool/str/None/tuple attributes of a module (its constructor args)."""
    return {
        k: json_safe(v)
        for k, v in vars(module).items()
        if not k.startswith("_") and k != "training" and _simple(v)
    }


def _extra_repr(module: nn.Module) -> str:
    try:
        return str(module.extra_repr())
    except Exception:
        return ""


def model_meta(model: nn.Module) -> dict[str, Any]:
    modules = []
    for name, mod in model.named_modules():
        prefix = f"{name}." if name else ""
        modules.append(
            {
                "name": name,
                "type": type(mod).__name__,
                "args": module_args(mod),
                "extra_repr": _extra_repr(mod),
                "params": [prefix + p for p, _ in mod.named_parameters(recurse=False)],
            }
        )
    n_params = 0
    for p in model.parameters():
        if not isinstance(p, nn.parameter.UninitializedParameter):
            n_params += p.numel()
    return {
        "class": type(model).__name__,
        "n_params": n_params,
        "training": bool(model.training),
        "modules": modules,
    }


def optimizer_meta(optimizer: Any, names_by_id: dict[int, str]) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    groups = []
    for group in getattr(optimizer, "param_groups", []):
        entry = {k: json_safe(v) for k, v in group.items() if k != "params"}
        entry["params"] = [names_by_id.get(id(p), "?") for p in group.get("params", [])]
        groups.append(entry)
    return {"class": type(optimizer).__name__, "param_groups": groups}


def loss_meta(loss_fn: Any) -> dict[str, Any] | None:
    if loss_fn is None:
        return None
    if isinstance(loss_fn, nn.Module):
        args = module_args(loss_fn)
        for key in ("weight", "pos_weight"):
            t = getattr(loss_fn, key, None)
            args[key] = json_safe(t.reshape(-1)) if isinstance(t, torch.Tensor) else None
            if isinstance(args[key], (int, float)):
                args[key] = [args[key]]
        return {"class": type(loss_fn).__name__, "args": args}
    name = getattr(loss_fn, "__name__", None) or type(loss_fn).__name__
    return {"class": name, "args": {}}


def env_meta(model: nn.Module, rank: int, world_size: int) -> dict[str, Any]:
    first = next(iter(model.parameters()), None)
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(first.device) if first is not None else None,
        "dtype": str(first.dtype) if first is not None else None,
        "world_size": world_size,
        "rank": rank,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }


def all_meta(
    model: nn.Module,
    optimizer: Any,
    loss_fn: Any,
    options: dict[str, Any],
    rank: int,
    world_size: int,
    names_by_id: dict[int, str],
) -> dict[str, str]:
    """The ``/meta`` attributes: key -> JSON text."""
    return {
        "model": dumps(model_meta(model)),
        "optimizer": dumps(optimizer_meta(optimizer, names_by_id)),
        "loss": dumps(loss_meta(loss_fn)),
        "env": dumps(env_meta(model, rank, world_size)),
        "options": dumps(options),
    }
