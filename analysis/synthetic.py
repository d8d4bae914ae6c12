"""Synthetic traces: a healthy-looking run as arrays, any dataset overridable.

For detector tests on synthetic arrays and for benchmarks that need huge traces
quickly. ``synthetic_arrays`` returns ``(data, attrs)`` keyed by schema paths;
``synthetic_trace`` wraps them in an in-memory ``Trace``; ``save_arrays`` writes
them to an HDF5 file with the same layout the recorder writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.trace import Trace
from recorders import schema as S

DEFAULT_MODULES: tuple[tuple[str, str], ...] = (("fc1", "Linear"), ("act", "ReLU"), ("fc2", "Linear"))
DEFAULT_PARAMS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("fc1.weight", "fc1", (32, 16)),
    ("fc1.bias", "fc1", (32,)),
    ("fc2.weight", "fc2", (4, 32)),
    ("fc2.bias", "fc2", (4,)),
)


def _healthy_series(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(n, dtype=np.float64)
    loss = 0.1 + 1.3 * np.exp(-t / max(n / 5, 1)) + 0.02 * rng.standard_normal(n)
    return {S.STEP: np.arange(n, dtype=np.int64), S.TIME: t * 0.01, S.LOSS: loss,
            S.LR: np.full((n, 1), 1e-3), S.GRAD_CARRY: np.zeros(n, np.float32)}


def _param_stats(n: int, params: Sequence[tuple[str, str, tuple[int, ...]]],
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = len(params)
    numel = np.array([int(np.prod(shape)) for _, _, shape in params], dtype=np.float64)
    fan_in = np.array([shape[-1] if len(shape) > 1 else shape[0] for _, _, shape in params], float)
    w_std = np.tile(1.0 / np.sqrt(fan_in), (n, 1)).astype(np.float32)
    w_norm = (w_std * np.sqrt(numel)).astype(np.float32)
    decay = np.exp(-np.arange(n) / max(n / 3, 1))[:, None]
    g_norm = (w_norm * (0.05 + 0.2 * decay) * (1 + 0.1 * rng.random((n, p)))).astype(np.float32)
    return {
        f"{S.PARAMS}/w_norm": w_norm,
        f"{S.PARAMS}/w_mean": np.zeros((n, p), np.float32),
        f"{S.PARAMS}/w_std": w_std,
        f"{S.PARAMS}/w_maxabs": (w_std * 3).astype(np.float32),
        f"{S.PARAMS}/w_nonfinite": np.zeros((n, p), np.float32),
        f"{S.PARAMS}/g_norm": g_norm,
        f"{S.PARAMS}/g_maxabs": (g_norm / np.sqrt(numel) * 4).astype(np.float32),
        f"{S.PARAMS}/g_zero_frac": np.zeros((n, p), np.float32),
        f"{S.PARAMS}/g_nonfinite": np.zeros((n, p), np.float32),
        f"{S.PARAMS}/update_ratio": (1e-3 * (1 + 0.2 * rng.random((n, p)))).astype(np.float32),
    }


def _module_stats(n: int, modules: Sequence[tuple[str, str]], rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    m = len(modules)
    relu = np.array([t == "ReLU" for _, t in modules])
    bounded = np.array([t in ("Tanh", "Sigmoid") for _, t in modules])
    std = (0.8 + 0.2 * rng.random((n, m))).astype(np.float32)
    return {
        f"{S.MODULES}/a_mean": np.where(relu, 0.4, 0.0) * np.ones((n, m), np.float32),
        f"{S.MODULES}/a_std": std,
        f"{S.MODULES}/a_maxabs": (std * 3.5).astype(np.float32),
        f"{S.MODULES}/a_zero_frac": np.where(relu, 0.5, 0.0) * np.ones((n, m), np.float32),
        f"{S.MODULES}/a_sat_frac": np.where(bounded, 0.01, np.nan) * np.ones((n, m), np.float32),
        f"{S.MODULES}/a_dead_frac": np.zeros((n, m), np.float32),
        f"{S.MODULES}/a_nonfinite": np.zeros((n, m), np.float32),
    }


def _batch_groups(n: int, classes: int, rows: int, features: int, rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    logits = rng.standard_normal((n, rows, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=(n, rows))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    hist = np.stack([np.bincount(r, minlength=classes) for r in logits.argmax(-1)])
    x = rng.standard_normal((n, rows, features)).astype(np.float32)
    return {
        f"{S.OUTPUTS}/sample": logits,
        f"{S.OUTPUTS}/col_mean": logits.mean(1),
        f"{S.OUTPUTS}/col_std": logits.std(1),
        f"{S.OUTPUTS}/argmax_hist": hist.astype(np.int32),
        f"{S.OUTPUTS}/row_sum_mean": logits.sum(-1).mean(1),
        f"{S.OUTPUTS}/row_sum_std": logits.sum(-1).std(1),
        f"{S.OUTPUTS}/min": logits.min((1, 2)),
        f"{S.OUTPUTS}/max": logits.max((1, 2)),
        f"{S.OUTPUTS}/frac_in_01": ((logits >= 0) & (logits <= 1)).mean((1, 2)),
        f"{S.OUTPUTS}/softmax_maxprob": probs.max(-1).mean(1),
        f"{S.OUTPUTS}/nonfinite": np.zeros(n, np.float32),
        f"{S.TARGETS}/sample": labels[..., None].astype(np.float32),
        f"{S.TARGETS}/class_hist": np.stack([np.bincount(r, minlength=classes) for r in labels])
        .astype(np.int32),
        f"{S.TARGETS}/mean": labels.mean(1), f"{S.TARGETS}/std": labels.std(1),
        f"{S.TARGETS}/min": labels.min(1).astype(float), f"{S.TARGETS}/max": labels.max(1)
        .astype(float), f"{S.TARGETS}/nonfinite": np.zeros(n, np.float32),
        f"{S.INPUTS}/sample": x, f"{S.INPUTS}/feat_mean": x.mean(1), f"{S.INPUTS}/feat_std": x.std(1),
        f"{S.INPUTS}/mean": x.mean((1, 2)), f"{S.INPUTS}/std": x.std((1, 2)),
        f"{S.INPUTS}/maxabs": np.abs(x).max((1, 2)), f"{S.INPUTS}/nonfinite": np.zeros(n, np.float32),
    }


def synthetic_arrays(
    n_steps: int = 200,
    params: Sequence[tuple[str, str, tuple[int, ...]]] = DEFAULT_PARAMS,
    modules: Sequence[tuple[str, str]] = DEFAULT_MODULES,
    classes: int = 4,
    rows: int = 16,
    features: int = 16,
    overrides: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """A healthy classification run as ``(data, attrs)``; ``overrides`` replace datasets.

    An override value of None removes that dataset or group (e.g. ``{"outputs": None}``).
    ``meta`` entries replace the JSON metadata (``model``, ``optimizer``, ``loss``…).
    """
    rng = np.random.default_rng(seed)
    n = n_steps
    data: dict[str, np.ndarray] = {}
    data.update(_healthy_series(n, rng))
    data.update(_param_stats(n, params, rng))
    data.update(_module_stats(n, modules, rng))
    data.update(_batch_groups(n, classes, rows, features, rng))
    data[S.PARAM_NAMES] = np.array([p[0] for p in params], dtype=object)
    data[S.PARAM_MODULE] = np.array([p[1] for p in params], dtype=object)
    data[S.PARAM_NUMEL] = np.array([int(np.prod(p[2])) for p in params], dtype=np.int64)
    data[S.PARAM_REQUIRES_GRAD] = np.ones(len(params), bool)
    data[S.PARAM_IN_OPTIMIZER] = np.ones(len(params), bool)
    data[S.MODULE_NAMES] = np.array([m[0] for m in modules], dtype=object)
    data[S.MODULE_TYPES] = np.array([m[1] for m in modules], dtype=object)
    model = {"class": "Sequential", "n_params": int(sum(np.prod(p[2]) for p in params)),
             "training": True,
             "modules": [{"name": name, "type": typ, "args": {}, "extra_repr": "",
                          "params": [p[0] for p in params if p[1] == name]}
                         for name, typ in modules]}
    meta_all: dict[str, Any] = {
        "model": model,
        "optimizer": {"class": "Adam", "param_groups": [
            {"lr": 1e-3, "weight_decay": 0.0, "params": [p[0] for p in params]}]},
        "loss": {"class": "CrossEntropyLoss", "args": {"reduction": "mean", "label_smoothing": 0.0}},
        "env": {"torch": "synthetic", "device": "cpu", "dtype": "float32", "world_size": 1, "rank": 0},
        "options": {"every": 1},
    }
    meta_all.update(meta or {})
    attrs: dict[str, dict[str, Any]] = {
        "": {S.ATTR_FORMAT: S.FORMAT_NAME, S.ATTR_VERSION: S.FORMAT_VERSION, S.ATTR_CLOSED: 1,
             S.ATTR_STEPS_WRITTEN: n, S.ATTR_RANK: 0, S.ATTR_WORLD: 1},
        S.META: {k: json.dumps(v) for k, v in meta_all.items()},
        S.PARAMS: {S.PARAM_SHAPES_ATTR: json.dumps([list(p[2]) for p in params])},
        S.OUTPUTS: {"shape": json.dumps([rows, classes]), "dtype": "float32", "columns": classes},
        S.TARGETS: {"kind": "index", "shape": json.dumps([rows]), "dtype": "int64", "columns": 1},
        S.INPUTS: {"shape": json.dumps([rows, features]), "dtype": "float32",
                   "feature_index": np.arange(features)},
    }
    for key, value in (overrides or {}).items():
        key = key.strip("/")
        if value is None:
            for k in [k for k in data if k == key or k.startswith(key + "/")]:
                del data[k]
            attrs.pop(key, None)
        else:
            data[key] = np.asarray(value)
    return data, attrs


def synthetic_trace(n_steps: int = 200, **kwargs: Any) -> Trace:
    """An in-memory ``Trace`` of ``synthetic_arrays(n_steps, **kwargs)``."""
    data, attrs = synthetic_arrays(n_steps, **kwargs)
    return Trace.from_arrays(data, attrs, path="<synthetic>")


def save_arrays(path: str, data: Mapping[str, np.ndarray], attrs: Mapping[str, Mapping[str, Any]]
                ) -> None:
    """Write ``(data, attrs)`` to an HDF5 file laid out as the recorder lays it out."""
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in data.items():
            value = np.asarray(value)
            if value.dtype == object:
                f.create_dataset(key, data=value.astype(str).astype(object),
                                 dtype=h5py.string_dtype())
                continue
            chunks = (min(max(len(value), 1), 256),) + value.shape[1:] if value.ndim else None
            f.create_dataset(key, data=value, maxshape=(None,) + value.shape[1:] if value.ndim
                             else None, chunks=chunks)
        for group, values in attrs.items():
            obj = f.require_group(group) if group else f
            for k, v in values.items():
                obj.attrs[k] = v


LONG_DROPPED = ("w_mean", "w_std", "w_maxabs", "g_maxabs", "g_zero_frac", "a_maxabs", "a_zero_frac")


def save_long(path: str, n: int, params: Sequence[tuple[str, str, tuple[int, ...]]],
              modules: Sequence[tuple[str, str]], block: int = 32768,
              drop: Sequence[str] = LONG_DROPPED, rows: int = 8, features: int = 4) -> None:
    """A long healthy trace written block by block (bounded memory): one smooth loss over the
    run. The statistics named in ``drop`` are left out (they make the file large and the
    heavy views do not read them)."""
    import h5py

    def arrays(count: int, start: int) -> tuple[dict, dict]:
        data, attrs = synthetic_arrays(count, params=params, modules=modules, rows=rows,
                                       features=features, seed=start)
        for key in list(data):
            if key.partition("/")[2] in drop:
                del data[key]
        x = np.arange(start, start + count)
        data[S.STEP] = x.astype(np.int64)
        data[S.TIME] = x * 0.01
        noise = np.random.default_rng(start).normal(0, 0.01, count)
        data[S.LOSS] = 2.0 * np.exp(-x / (n / 4)) + 0.1 + noise
        return data, attrs

    data, attrs = arrays(min(block, n), 0)
    save_arrays(path, data, attrs)
    rows_keys = [k for k, v in data.items() if np.asarray(v).dtype != object and np.asarray(v).ndim
                 and len(v) == min(block, n)]
    with h5py.File(path, "a") as f:
        f.attrs[S.ATTR_STEPS_WRITTEN] = n  # the first block's count would cap what a reader reads
        for key in rows_keys:
            f[key].resize(n, axis=0)
        for a in range(block, n, block):
            b = min(a + block, n)
            part, _ = arrays(b - a, a)
            for key in rows_keys:
                f[key][a:b] = part[key]
