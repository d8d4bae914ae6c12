"""Names a user recognises: a module with its type and shape, e.g. ``model.0 (Linear 13→64)``.

Numbered children of a ``Sequential`` (``0``, ``3``) mean nothing on their own; every
report text names a module through ``module_label`` and a parameter through
``param_label``. ``Finding.layer`` keeps the plain recorded name (what the app selects).
"""

from __future__ import annotations

from typing import Any

from analysis.trace import Trace

_SHAPE_ARGS = (("in_features", "out_features"), ("in_channels", "out_channels"),
               ("input_size", "hidden_size"), ("num_embeddings", "embedding_dim"))


def display_name(name: str) -> str:
    """``model.0`` for a numbered top-level child, the recorded name otherwise (``model`` for the root)."""
    if not name:
        return "model"
    return f"model.{name}" if name.split(".")[0].isdigit() else name


def _shape(mtype: str, args: dict[str, Any]) -> str:
    for a, b in _SHAPE_ARGS:
        if isinstance(args.get(a), int) and isinstance(args.get(b), int):
            size = args.get("kernel_size")
            kernel = ""
            if isinstance(size, (list, tuple)) and size:
                kernel = " " + "x".join(str(int(k)) for k in size)
            elif isinstance(size, int):
                kernel = f" {size}x{size}"
            return f"{args[a]}→{args[b]}{kernel}"
    if isinstance(args.get("normalized_shape"), (list, tuple)):
        return "x".join(str(int(k)) for k in args["normalized_shape"])
    if isinstance(args.get("num_features"), int):
        return str(args["num_features"])
    return ""


def module_label(trace: Trace, name: str) -> str:
    """``model.0 (Linear 13→64)``, ``encoder.act (ReLU)``; the bare name when nothing is known."""
    info = trace.module_info.get(name) or {}
    mtype = str(info.get("type") or "")
    if not mtype and name in trace.module_names:
        mtype = trace.module_types[trace.module_names.index(name)]
    if not mtype:
        return display_name(name)
    shape = _shape(mtype, dict(info.get("args") or {}))
    return f"{display_name(name)} ({mtype}{' ' + shape if shape else ''})"


def module_label_at(trace: Trace, j: int) -> str:
    """``module_label`` of leaf module number ``j``."""
    names = trace.module_names
    return module_label(trace, names[j]) if 0 <= j < len(names) else f"module {j}"


def param_label(trace: Trace, i: int) -> str:
    """``model.0.weight (Linear 13→64)``: a parameter with the module it belongs to."""
    info = trace.param_info
    if not 0 <= i < len(info):
        return f"parameter {i}"
    p = info[i]
    label = module_label(trace, p["module"]) if p["module"] in trace.module_info else ""
    own = display_name(p["name"])
    if label and "(" in label:
        return f"{own} {label[label.index('('):]}"
    return own
