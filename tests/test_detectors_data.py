"""Data / outputs / loss detectors on synthetic traces: each fires on its failure, stays quiet when healthy.

Traces are built from ``analysis.synthetic`` with the batch groups replaced by arrays that
are consistent with each other (the same summaries the recorder computes from a batch).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import analyze
from analysis import batch_metrics as M
from analysis.detectors import REGISTRY
from analysis.synthetic import synthetic_arrays
from analysis.trace import Trace

MINE = (
    "double_softmax",
    "dominant_bias",
    "bounded_output",
    "unnormalized_inputs",
    "constant_targets",
    "class_imbalance",
    "label_leakage",
    "broadcast_loss",
    "constant_inputs",
    "output_collapse",
    "constant_prediction",
    "softmax_saturation",
    "loss_zero_early",
)
N, R = 200, 16


# ----------------------------------------------------------------------------- trace builders
def outputs_fields(sample: np.ndarray) -> dict[str, np.ndarray]:
    """Every ``outputs/*`` summary of ``(N, R, C)`` outputs, computed as the recorder does."""
    s = np.asarray(sample, np.float32)
    c = s.shape[-1]
    e = np.exp(s - s.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    hist = (
        np.stack([np.bincount(r, minlength=c) for r in s.argmax(-1)])
        if c > 1
        else np.zeros(s.shape[:1] + (1,), np.int32)
    )
    return {
        "outputs/sample": s,
        "outputs/col_mean": s.mean(1),
        "outputs/col_std": s.std(1),
        "outputs/argmax_hist": hist.astype(np.int32),
        "outputs/row_sum_mean": s.sum(-1).mean(1),
        "outputs/row_sum_std": s.sum(-1).std(1),
        "outputs/min": s.min((1, 2)),
        "outputs/max": s.max((1, 2)),
        "outputs/frac_in_01": ((s >= 0) & (s <= 1)).mean((1, 2)),
        "outputs/softmax_maxprob": probs.max(-1).mean(1),
        "outputs/nonfinite": np.zeros(len(s), np.float32),
    }


def targets_fields(t: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """``targets/*`` of class indices ``(N, R)`` (int) or dense targets ``(N, R, Ct)`` (float)."""
    t = np.asarray(t)
    if t.ndim == 2:
        hist = np.stack([np.bincount(np.minimum(r, classes - 1), minlength=classes) for r in t])
        sample = t[..., None].astype(np.float32)
    else:
        hist = t.sum(1) if t.shape[-1] > 1 else t.sum(1)
        sample = t.astype(np.float32)
    flat = sample.reshape(len(t), -1)
    return {
        "targets/sample": sample,
        "targets/class_hist": hist.astype(np.int32),
        "targets/mean": flat.mean(1),
        "targets/std": flat.std(1),
        "targets/min": flat.min(1),
        "targets/max": flat.max(1),
        "targets/nonfinite": np.zeros(len(t), np.float32),
    }


def inputs_fields(x: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(x, np.float32)
    return {
        "inputs/sample": x,
        "inputs/feat_mean": x.mean(1),
        "inputs/feat_std": x.std(1),
        "inputs/mean": x.mean((1, 2)),
        "inputs/std": x.std((1, 2)),
        "inputs/maxabs": np.abs(x).max((1, 2)),
        "inputs/nonfinite": np.zeros(len(x), np.float32),
    }


def build(
    n: int = N,
    classes: int = 4,
    seed: int = 0,
    data: dict | None = None,
    attrs: dict | None = None,
    meta: dict | None = None,
    modules=None,
    params=None,
) -> Trace:
    """A synthetic trace with ``data`` replacing datasets and ``attrs`` merged into group attributes."""
    kw = {}
    if modules is not None:
        kw["modules"] = modules
    if params is not None:
        kw["params"] = params
    arrays, at = synthetic_arrays(n, classes=classes, seed=seed, meta=meta, **kw)
    for key, value in (data or {}).items():
        if value is None:
            for k in [k for k in arrays if k == key or k.startswith(key + "/")]:
                del arrays[k]
            at.pop(key, None)
        else:
            arrays[key] = np.asarray(value)
    for group, values in (attrs or {}).items():
        at.setdefault(group, {}).update(
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()}
        )
    return Trace.from_arrays(arrays, at, path="<test>")


def decaying(n: int, start: float, end: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return end + (start - end) * np.exp(-t / (n / 5)) + 0.01 * abs(start) * rng.standard_normal(n)


def learning_logits(
    n: int, labels: np.ndarray, classes: int, seed: int = 0, margin: float = 3.0
) -> np.ndarray:
    """Logits that favour the true class more and more over the run (a model that learns)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, labels.shape[1], classes))
    grow = margin * (1 - np.exp(-np.arange(n) / (n / 5)))[:, None]
    z[np.arange(n)[:, None], np.arange(labels.shape[1])[None], labels] += grow
    return z


def labels_of(n: int, classes: int, seed: int = 0, p=None) -> np.ndarray:
    return np.random.default_rng(seed + 100).choice(classes, size=(n, R), p=p)


def run(trace: Trace, code: str):
    """The findings of one detector on ``trace`` (through the registry, requires checked)."""
    det = REGISTRY[code]
    assert not det.missing(trace), det.missing(trace)
    return det.run(trace)


def problems(findings) -> list:
    return [f for f in findings if f.severity in ("warning", "error")]


# ----------------------------------------------------------------------------- healthy variants
def healthy_classifier(seed: int = 0, n: int = N, smoothing: float = 0.0) -> Trace:
    labels = labels_of(n, 4, seed)
    z = learning_logits(n, labels, 4, seed)
    return build(
        n,
        seed=seed,
        data={
            **outputs_fields(z),
            **targets_fields(labels, 4),
            "steps/loss": decaying(n, 1.4, 0.3 + smoothing, seed),
        },
        meta={"loss": {"class": "CrossEntropyLoss", "args": {"label_smoothing": smoothing}}},
    )


def healthy_regression(seed: int = 0, n: int = N) -> Trace:
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, R, 1))
    out = 0.7 * y + 0.5 * rng.standard_normal((n, R, 1))
    x = rng.standard_normal((n, R, 10))
    return build(
        n,
        classes=1,
        seed=seed,
        data={
            **outputs_fields(out),
            **targets_fields(y, 1),
            **inputs_fields(x),
            "steps/loss": decaying(n, 1.0, 0.45, seed),
        },
        attrs={
            "targets": {"kind": "dense", "shape": [R, 1], "dtype": "float32", "columns": 1},
            "outputs": {"shape": [R, 1], "columns": 1},
        },
        meta={"loss": {"class": "MSELoss", "args": {"reduction": "mean"}}},
        modules=(("fc1", "Linear"), ("act", "ReLU"), ("fc2", "Linear")),
    )


def healthy_binary(seed: int = 0, n: int = N) -> Trace:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, R, 1)) < 0.4).astype(np.float32)
    grow = 2.5 * (1 - np.exp(-np.arange(n) / (n / 5)))[:, None, None]
    out = (2 * y - 1) * grow + rng.standard_normal((n, R, 1))
    return build(
        n,
        classes=1,
        seed=seed,
        data={**outputs_fields(out), **targets_fields(y, 1), "steps/loss": decaying(n, 0.69, 0.2, seed)},
        attrs={
            "targets": {"kind": "dense", "shape": [R, 1], "dtype": "float32", "columns": 1},
            "outputs": {"shape": [R, 1], "columns": 1},
        },
        meta={"loss": {"class": "BCEWithLogitsLoss", "args": {"pos_weight": None}}},
    )


HEALTHY = {
    "default": lambda s: build(seed=s),
    "classifier": healthy_classifier,
    "label_smoothing": lambda s: healthy_classifier(s, smoothing=0.1),
    "regression": healthy_regression,
    "binary": healthy_binary,
}


@pytest.mark.parametrize("variant", sorted(HEALTHY))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_variants_raise_no_warning_from_these_detectors(variant, seed):
    report = analyze(HEALTHY[variant](seed), codes=MINE)
    assert not report.problems(), [(f.code, f.severity, f.evidence) for f in report.problems()]
    assert not [n for n in report.notes if "failed" in n], report.notes


def test_short_and_nan_traces_do_not_crash():
    assert not analyze(build(n=3), codes=MINE).problems()
    nan = {
        k: np.full_like(v, np.nan, dtype=np.float32) for k, v in outputs_fields(np.zeros((N, R, 4))).items()
    }
    report = analyze(build(data={**nan, "steps/loss": np.full(N, np.nan)}), codes=MINE)
    assert not [n for n in report.notes if "failed" in n], report.notes


def test_missing_groups_are_reported_not_guessed():
    report = analyze(build(data={"outputs": None, "targets": None, "inputs": None}), codes=MINE)
    assert not report.findings
    assert any("constant_targets: needs targets" in n for n in report.notes)


# ----------------------------------------------------------------------------- causes
def softmax_probs(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


SOFTMAX_MODEL = (("fc1", "Linear"), ("act", "ReLU"), ("fc2", "Linear"), ("sm", "Softmax"))


def test_double_softmax_fires_on_probabilities_into_cross_entropy():
    labels = labels_of(N, 4)
    probs = softmax_probs(learning_logits(N, labels, 4, margin=6))
    floor = M.double_softmax_floor(4, "softmax")
    trace = build(
        data={
            **outputs_fields(probs),
            **targets_fields(labels, 4),
            "steps/loss": decaying(N, 1.38, floor + 0.1),
        },
        modules=SOFTMAX_MODEL,
    )
    [f] = run(trace, "double_softmax")
    assert (f.severity, f.layer) == ("error", "sm") and f.confidence >= 0.9
    assert "CrossEntropyLoss" in f.evidence and "0.744" in f.evidence and "nn.Softmax" in f.fix
    assert analyze(trace).findings[0].code == "double_softmax"


def test_double_softmax_quiet_when_the_loss_cannot_have_seen_those_probabilities():
    labels = labels_of(N, 4)
    probs = softmax_probs(learning_logits(N, labels, 4))
    trace = build(
        data={**outputs_fields(probs), **targets_fields(labels, 4), "steps/loss": decaying(N, 1.4, 0.1)}
    )
    assert run(trace, "double_softmax") == []  # loss 0.1 < 0.743: the loss saw logits, rec.step got probs
    assert run(healthy_classifier(), "double_softmax") == []


def test_double_softmax_sigmoid_into_bce_with_logits_and_probs_into_nll():
    rng = np.random.default_rng(0)
    y = (rng.random((N, R, 1)) < 0.5).astype(np.float32)
    p = np.clip(0.5 + 0.4 * (2 * y - 1) + 0.05 * rng.standard_normal((N, R, 1)), 0, 1)
    trace = build(
        classes=1,
        data={**outputs_fields(p), **targets_fields(y, 1), "steps/loss": decaying(N, 0.7, 0.5)},
        attrs={"targets": {"kind": "dense"}, "outputs": {"shape": [R, 1], "columns": 1}},
        meta={"loss": {"class": "BCEWithLogitsLoss", "args": {}}},
        modules=(("fc", "Linear"), ("out", "Sigmoid")),
    )
    [f] = run(trace, "double_softmax")
    assert f.severity == "error" and f.layer == "out"
    assert (
        run(
            build(
                classes=1,
                data={**outputs_fields(p), **targets_fields(y, 1)},
                meta={"loss": {"class": "BCELoss", "args": {}}},
            ),
            "double_softmax",
        )
        == []
    )
    labels = labels_of(N, 4)
    probs = softmax_probs(learning_logits(N, labels, 4))
    nll = build(
        data={**outputs_fields(probs), **targets_fields(labels, 4), "steps/loss": -decaying(N, 0.25, 0.8)},
        meta={"loss": {"class": "NLLLoss", "args": {}}},
    )
    [f] = run(nll, "double_softmax")
    assert f.severity == "error" and "log-probabilities" in f.title and "LogSoftmax" in f.fix


def test_double_softmax_from_the_model_alone_is_a_warning():
    [f] = run(build(data={"outputs": None}, modules=SOFTMAX_MODEL), "double_softmax")
    assert f.severity == "warning" and f.layer == "sm"
    assert run(build(data={"outputs": None}), "double_softmax") == []


BIAS_PARAMS = (
    ("fc1.weight", "fc1", (32, 16)),
    ("fc1.bias", "fc1", (32,)),
    ("fc2.weight", "fc2", (4, 32)),
    ("fc2.bias", "fc2", (4,)),
)


def with_bias_snapshots(bias_first: np.ndarray, bias_last: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "snapshots/step": np.array([0, N - 1]),
        "snapshots/reason": np.array([1, 2], np.int8),
        "snapshots/weight/p3": np.stack([bias_first, bias_last]).astype(np.float32),
    }


def test_dominant_bias_fires_when_one_unit_wins_from_the_first_step():
    rng = np.random.default_rng(0)
    labels = labels_of(N, 4)
    bias = np.array([0.0, 0.1, 8.0, -0.1])
    z = 0.5 * rng.standard_normal((N, R, 4)) + bias
    trace = build(
        data={**outputs_fields(z), **targets_fields(labels, 4), **with_bias_snapshots(bias, bias - 0.5)},
        params=BIAS_PARAMS,
    )
    [f] = run(trace, "dominant_bias")
    assert (f.severity, f.layer) == ("error", "fc2.bias") and "unit 2" in f.evidence and f.steps[0] == 0
    codes = analyze(trace).codes()
    assert codes[0] == "dominant_bias" and "constant_prediction" in codes


def test_dominant_bias_quiet_on_small_biases_and_learnt_priors():
    labels = labels_of(N, 4)
    z = learning_logits(N, labels, 4)
    trace = build(
        data={
            **outputs_fields(z),
            **targets_fields(labels, 4),
            **with_bias_snapshots(np.array([0.1, -0.1, 0.05, 0.0]), np.array([0.3, -0.2, 0.1, 0.0])),
        },
        params=BIAS_PARAMS,
    )
    assert run(trace, "dominant_bias") == []
    # the bias grew towards a 95 % majority class: the prior, not a planted bias
    labels = labels_of(N, 4, p=[0.95, 0.02, 0.02, 0.01])
    z = 0.3 * np.random.default_rng(1).standard_normal((N, R, 4)) + np.array([3.0, 0, 0, 0])
    trace = build(
        data={
            **outputs_fields(z),
            **targets_fields(labels, 4),
            **with_bias_snapshots(np.zeros(4), np.array([3.0, 0, 0, 0])),
        },
        params=BIAS_PARAMS,
    )
    assert not problems(run(trace, "dominant_bias"))


def test_dominant_bias_ignores_regression_offsets_and_leads_under_two_nats():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((N, R, 1)) + 5
    out = 0.05 * rng.standard_normal((N, R, 1)) + 5
    params = (("fc.weight", "fc", (1, 16)), ("fc.bias", "fc", (1,)))
    snaps = {
        "snapshots/step": np.array([0, N - 1]),
        "snapshots/reason": np.array([1, 2], np.int8),
        "snapshots/weight/p1": np.array([[5.0], [5.0]], np.float32),
    }
    trace = build(
        classes=1,
        data={**outputs_fields(out), **targets_fields(y, 1), **snaps},
        params=params,
        attrs={"targets": {"kind": "dense", "shape": [R, 1]}, "outputs": {"shape": [R, 1], "columns": 1}},
        meta={"loss": {"class": "MSELoss", "args": {}}},
    )
    assert run(trace, "dominant_bias") == []
    labels = labels_of(N, 4)
    bias = np.array([0.0, 0.0, 1.5, 0.0])  # wins at first (tiny logits), but only by 1.5 nats
    z = 0.1 * rng.standard_normal((N, R, 4)) + bias
    trace = build(
        data={**outputs_fields(z), **targets_fields(labels, 4), **with_bias_snapshots(bias, bias)},
        params=BIAS_PARAMS,
    )
    assert run(trace, "dominant_bias") == []


def regression(out: np.ndarray, y: np.ndarray, last: str, loss: str = "MSELoss", **kw) -> Trace:
    return build(
        classes=1,
        data={**outputs_fields(out), **targets_fields(y, 1), **kw.pop("data", {})},
        attrs={
            "targets": {"kind": "dense", "shape": [R, 1], "dtype": "float32", "columns": 1},
            "outputs": {"shape": [R, 1], "columns": 1},
            **kw.pop("attrs", {}),
        },
        meta={"loss": {"class": loss, "args": {}}},
        modules=(("fc1", "Linear"), ("act", "ReLU"), ("fc2", "Linear"), ("out", last))[: 4 if last else 3],
    )


def test_bounded_output_relu_with_negative_targets_and_sigmoid_with_large_targets():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((N, R, 1))
    [f] = run(regression(np.maximum(0.8 * y, 0), y, "ReLU"), "bounded_output")
    assert (f.severity, f.layer) == ("error", "out") and "below 0" in f.evidence
    y = 10 + 5 * rng.random((N, R, 1))
    [f] = run(regression(np.full((N, R, 1), 0.999), y, "Sigmoid"), "bounded_output")
    assert f.severity == "error" and "above 1" in f.evidence and "Sigmoid" in f.fix


def test_bounded_output_relu_in_forward_from_the_data_alone():
    y = np.random.default_rng(0).standard_normal((N, R, 1))
    [f] = run(regression(np.maximum(0.8 * y, 0), y, ""), "bounded_output")
    assert f.severity == "warning" and f.layer is None


def test_bounded_output_quiet_when_the_range_covers_the_targets():
    assert run(healthy_regression(), "bounded_output") == []
    rng = np.random.default_rng(0)
    y = rng.random((N, R, 1))
    assert (
        run(regression(np.clip(y + 0.1 * rng.standard_normal(y.shape), 0, 1), y, "Sigmoid"), "bounded_output")
        == []
    )
    y = np.abs(rng.standard_normal((N, R, 1)))  # non-negative targets under a ReLU output are fine
    assert run(regression(np.maximum(y + 0.1, 0), y, "ReLU"), "bounded_output") == []
    assert run(healthy_classifier(), "bounded_output") == []


def scaled_inputs(scales, n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, R, len(scales))) * np.asarray(scales) + np.asarray(
        scales
    )


def test_unnormalized_inputs_fires_on_features_orders_of_magnitude_apart():
    trace = build(data=inputs_fields(scaled_inputs([1, 3, 1000, 1e5] + [1] * 12)))
    [f] = run(trace, "unnormalized_inputs")
    assert f.severity == "error" and "feature 3" in f.evidence and "standardise" in f.fix
    [f] = run(build(data=inputs_fields(scaled_inputs([30] * 16))), "unnormalized_inputs")
    assert f.severity == "warning"


def test_unnormalized_inputs_quiet_on_unit_scale_token_ids_and_normalising_first_layers():
    assert run(build(data=inputs_fields(scaled_inputs([1, 0.5, 2] * 5))), "unnormalized_inputs") == []
    tokens = build(
        data=inputs_fields(np.random.default_rng(0).integers(0, 5000, (N, R, 12))),
        attrs={"inputs": {"dtype": "int64"}},
    )
    assert run(tokens, "unnormalized_inputs") == []
    bn = build(
        data=inputs_fields(scaled_inputs([1000] * 16)), modules=(("bn", "BatchNorm1d"), ("fc", "Linear"))
    )
    assert not problems(run(bn, "unnormalized_inputs"))


def test_constant_targets_fires_on_one_label_and_on_one_vector():
    trace = build(data=targets_fields(np.zeros((N, R), int), 4))
    [f] = run(trace, "constant_targets")
    assert f.severity == "error" and f.title == "All targets are 0"
    onehot = np.zeros((N, R, 3), np.float32)
    onehot[..., 1] = 1
    dense = build(data=targets_fields(onehot, 3), attrs={"targets": {"kind": "dense", "columns": 3}})
    [f] = run(dense, "constant_targets")
    assert f.severity == "error" and "same vector" in f.title


def test_constant_targets_quiet_on_varied_targets_and_single_label_batches_are_info():
    assert run(build(), "constant_targets") == []
    assert run(healthy_regression(), "constant_targets") == []
    per_batch = np.repeat(np.arange(N) % 4, R).reshape(N, R)  # sorted, unshuffled data
    assert not problems(run(build(data=targets_fields(per_batch, 4)), "constant_targets"))


def test_class_imbalance_fires_when_the_model_predicts_only_the_majority():
    labels = labels_of(N, 4, p=[0.94, 0.02, 0.02, 0.02])
    z = np.random.default_rng(0).standard_normal((N, R, 4)) * 0.3 + np.array([2.0, 0, 0, 0])
    trace = build(data={**outputs_fields(z), **targets_fields(labels, 4)})
    [f] = run(trace, "class_imbalance")
    assert f.severity == "error" and "Class 0" in f.title and "weight" in f.fix
    assert analyze(trace).findings[0].code == "class_imbalance"


def test_class_imbalance_quiet_when_balanced_or_minority_is_still_predicted():
    assert run(healthy_classifier(), "class_imbalance") == []
    labels = labels_of(N, 4, p=[0.85, 0.05, 0.05, 0.05])
    z = learning_logits(N, labels, 4, margin=5)
    assert not problems(
        run(build(data={**outputs_fields(z), **targets_fields(labels, 4)}), "class_imbalance")
    )
    assert run(healthy_binary(), "class_imbalance") == []


def test_label_leakage_fires_on_a_copied_label_and_a_one_hot_of_it():
    labels = labels_of(N, 4)
    x = np.random.default_rng(0).standard_normal((N, R, 16))
    x[..., 5] = 2.5 * labels - 1
    loss = np.concatenate([decaying(40, 1.4, 0.001), np.full(N - 40, 0.001)])
    [f] = run(
        build(data={**inputs_fields(x), **targets_fields(labels, 4), "steps/loss": loss}), "label_leakage"
    )
    assert f.severity == "error" and "feature 5" in f.title and f.confidence >= 0.95
    x = np.random.default_rng(1).standard_normal((N, R, 16))
    x[..., 9] = labels == 2
    [f] = run(build(data={**inputs_fields(x), **targets_fields(labels, 4)}), "label_leakage")
    assert f.severity == "error" and "feature 9" in f.title


def test_label_leakage_quiet_on_informative_features_and_autoencoders():
    labels = labels_of(N, 4)
    x = np.random.default_rng(0).standard_normal((N, R, 16))
    x[..., 0] += 3 * labels  # well separated, but not a function of the label
    assert run(build(data={**inputs_fields(x), **targets_fields(labels, 4)}), "label_leakage") == []
    assert run(healthy_regression(), "label_leakage") == []
    ae = build(
        data={**inputs_fields(x), **targets_fields(x, 16)},
        attrs={"targets": {"kind": "dense", "shape": [R, 16], "columns": 16}},
    )
    assert run(ae, "label_leakage") == []


def test_broadcast_loss_fires_when_mse_broadcasts_and_the_outputs_collapse_to_the_mean():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((N, R, 1))
    out = np.repeat(y.mean(1, keepdims=True), R, axis=1) + 0.01 * rng.standard_normal((N, R, 1))
    loss = (y.std(1) ** 2).ravel() * 1.02
    trace = regression(out, y, "", data={"steps/loss": loss}, attrs={"targets": {"shape": [R]}})
    [f] = run(trace, "broadcast_loss")
    assert f.severity == "error" and "(16, 16)" in f.evidence and "unsqueeze" in f.fix
    assert analyze(trace).findings[0].code == "broadcast_loss"


def test_broadcast_loss_quiet_on_equal_shapes_and_info_when_the_run_does_not_show_it():
    assert run(healthy_regression(), "broadcast_loss") == []
    rng = np.random.default_rng(0)
    y = rng.standard_normal((N, R, 1))
    trace = regression(
        0.8 * y + 0.3 * rng.standard_normal(y.shape),
        y,
        "",
        attrs={"targets": {"shape": [R]}},
        data={"steps/loss": decaying(N, 1.0, 0.3)},
    )
    assert not problems(run(trace, "broadcast_loss"))
    assert run(healthy_classifier(), "broadcast_loss") == []  # (B, C) logits vs (B,) labels: CE's normal


def test_constant_inputs_fires_on_zeros_and_on_repeated_rows():
    [f] = run(build(data=inputs_fields(np.zeros((N, R, 16)))), "constant_inputs")
    assert f.severity == "error" and "equals 0" in f.evidence and "identical from step to step" in f.evidence
    rows = np.repeat(np.random.default_rng(0).standard_normal((N, 1, 16)), R, axis=1)
    [f] = run(build(data=inputs_fields(rows)), "constant_inputs")
    assert f.severity == "error" and "every row" in f.evidence


def test_constant_inputs_quiet_on_varied_inputs_and_single_row_batches():
    assert run(build(), "constant_inputs") == []
    x = np.random.default_rng(0).standard_normal((N, 1, 16))
    assert run(build(data=inputs_fields(x), attrs={"inputs": {"shape": [1, 16]}}), "constant_inputs") == []
    x[..., :8] = 0  # some constant features (image borders) are fine
    assert (
        run(
            build(data=inputs_fields(np.repeat(x, R, 1) + np.random.default_rng(1).random((N, R, 16)))),
            "constant_inputs",
        )
        == []
    )


# ----------------------------------------------------------------------------- symptoms
def test_output_collapse_fires_on_identical_rows_and_stays_quiet_when_outputs_vary():
    z = np.repeat(np.random.default_rng(0).standard_normal((N, 1, 4)), R, axis=1)
    [f] = run(build(data=outputs_fields(z)), "output_collapse")
    assert f.severity == "warning" and f.confidence >= 0.85
    for s in range(3):
        assert run(healthy_classifier(s), "output_collapse") == []
        assert run(healthy_regression(s), "output_collapse") == []


def test_constant_prediction_fires_on_one_class_and_on_zero_regression():
    z = np.random.default_rng(0).standard_normal((N, R, 4)) * 0.2 + np.array([0, 1.5, 0, 0])
    [f] = run(build(data=outputs_fields(z)), "constant_prediction")
    assert f.severity == "warning" and "class 1" in f.title
    y = np.random.default_rng(0).standard_normal((N, R, 1))
    [f] = run(regression(np.zeros((N, R, 1)), y, "ReLU"), "constant_prediction")
    assert f.title == "Predicts 0 for every input"


def test_constant_prediction_quiet_when_predictions_follow_the_targets():
    for variant in ("classifier", "binary", "regression"):
        assert run(HEALTHY[variant](0), "constant_prediction") == []


def test_softmax_saturation_fires_on_confident_wrong_predictions():
    labels = labels_of(N, 4)
    z = 60 * np.random.default_rng(0).standard_normal((N, R, 4))
    [f] = run(
        build(data={**outputs_fields(z), **targets_fields(labels, 4), "steps/loss": np.full(N, 30.0)}),
        "softmax_saturation",
    )
    assert f.severity == "warning" and "confident and wrong" in f.evidence


def test_softmax_saturation_quiet_when_confident_and_right():
    labels = labels_of(N, 4)
    z = learning_logits(N, labels, 4, margin=12)
    trace = build(
        data={**outputs_fields(z), **targets_fields(labels, 4), "steps/loss": decaying(N, 1.4, 1e-4)}
    )
    assert run(trace, "softmax_saturation") == []
    assert run(healthy_classifier(), "softmax_saturation") == []


def test_loss_zero_early_fires_on_a_collapse_in_the_first_epoch_and_on_exact_zero():
    loss = np.concatenate([np.geomspace(1.4, 1e-5, 15), np.full(N - 15, 1e-5)])
    [f] = run(build(data={"steps/loss": loss}), "loss_zero_early")
    assert f.severity == "info" and f.steps[1] < 20 and "entropy of the target classes" in f.evidence
    [f] = run(build(data={"steps/loss": np.zeros(N)}), "loss_zero_early")
    assert f.title == "Loss is exactly zero from the start" and f.severity == "warning"


def test_loss_zero_early_quiet_on_a_normal_descent():
    for s in range(3):
        assert run(build(seed=s), "loss_zero_early") == []
    assert run(build(data={"steps/loss": decaying(N, 2.3, 0.05)}), "loss_zero_early") == []


# ----------------------------------------------------------------------------- shared maths and helpers
def test_double_softmax_floor_is_the_least_cross_entropy_on_probabilities():
    rng = np.random.default_rng(0)
    for c in (2, 4, 10):
        p = rng.dirichlet(np.full(c, 0.05), size=20000)  # many rows, near one-hot included
        ce = -p[:, 0] + np.log(np.exp(p).sum(1))  # CrossEntropyLoss(p, target 0)
        floor = M.double_softmax_floor(c, "softmax")
        assert ce.min() >= floor - 1e-12 and ce.min() <= floor + 0.05
    p = rng.random(20000)
    bce = np.log1p(np.exp(-p))  # BCEWithLogitsLoss(p, target 1), the smaller branch
    assert bce.min() >= M.double_softmax_floor(1, "sigmoid") - 1e-12


def test_correlation_ratio_and_abs_corr_match_direct_formulas():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    x = np.stack([labels * 2.0, rng.standard_normal(500), labels + rng.standard_normal(500)], 1)
    within, eta2 = M.correlation_ratio(x, labels)
    for f in range(3):
        direct = sum(((x[labels == c, f] - x[labels == c, f].mean()) ** 2).sum() for c in range(3))
        assert within[f] == pytest.approx(direct / ((x[:, f] - x[:, f].mean()) ** 2).sum())
    assert within[0] == 0 and eta2[0] == 1 and within[1] > 0.9
    y = rng.standard_normal(500)
    r = M.abs_corr(np.stack([3 * y + 1, rng.standard_normal(500)], 1), y)
    assert r[0] == pytest.approx(1) and r[1] == pytest.approx(abs(np.corrcoef(x[:, 1], y)[0, 1]), abs=0.2)


def test_small_helpers():
    assert M.broadcast_shape((16, 1), (16,)) == (16, 16) and M.broadcast_shape((3, 2), (4,)) is None
    np.testing.assert_allclose(M.rolling_median([1, 9, 2, np.nan, 4], 3), [1, 5, 2, 5.5, 3])
    assert np.isnan(M.nanmedian([])) and np.isnan(M.nanmax(np.array([np.nan])))
    assert M.fmt(1.23456) == "1.23" and M.fmt(2e-7) == "2.0e-07"


def test_first_epoch_is_told_by_logged_scalars_or_repeated_inputs():
    from analysis.detectors import _data as D

    rng = np.random.default_rng(0)
    pool = rng.standard_normal((25 * R, 16)).astype(np.float32)  # a dataset of 25 batches
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(N // 25 + 1)])[: N * R]
    trace = build(data=inputs_fields(pool[order].reshape(N, R, 16)))
    assert D.first_epoch_end(trace) == 24
    assert D.first_epoch_end(build()) is None  # fresh random inputs never repeat
    logged = build(
        data={
            "scalars/names": np.array(["val_loss"] + [""] * 63, dtype=object),
            "scalars/step": np.array([39, 79]),
            "scalars/name_id": np.array([0, 0], np.int32),
            "scalars/value": np.array([1.0, 0.5]),
        }
    )
    assert D.first_epoch_end(logged) == 39


def test_sum_reduction_and_single_row_batches_are_not_mistaken_for_problems():
    labels = labels_of(N, 4)
    z = learning_logits(N, labels, 4, margin=8)
    summed = build(
        data={**outputs_fields(z), **targets_fields(labels, 4), "steps/loss": decaying(N, 22, 0.6)},
        meta={"loss": {"class": "CrossEntropyLoss", "args": {"reduction": "sum"}}},
    )
    assert not problems(run(summed, "softmax_saturation"))
    one = labels_of(N, 4)[:, :1]
    z1 = learning_logits(N, one, 4)
    single = build(
        data={**outputs_fields(z1), **targets_fields(one, 4)},
        attrs={"outputs": {"shape": [1, 4]}, "targets": {"shape": [1]}, "inputs": {"shape": [1, 16]}},
    )
    assert not analyze(single, codes=MINE).problems()


def test_class_axis_other_than_last_is_not_read_as_classes():
    labels = labels_of(N, 4)
    z = np.random.default_rng(0).standard_normal((N, R, 4)) * 0.2 + np.array([0, 1.5, 0, 0])
    seg = build(
        data={**outputs_fields(z), **targets_fields(labels, 4)},
        attrs={"outputs": {"shape": [2, 4, 8, 4]}, "targets": {"shape": [2, 8, 4]}},
    )
    assert run(seg, "constant_prediction") == []  # (B, C, H, W): the last dim is W, not the class


def test_targets_that_turn_constant_mid_run_fire_from_that_step():
    labels = labels_of(N, 4)
    cut = (3 * N) // 5
    labels[cut:] = 2  # the label pipeline breaks
    [f] = run(build(data=targets_fields(labels, 4)), "constant_targets")
    assert f.severity == "error" and f.steps[0] == cut and f.marks["events"] == [cut]


def test_inputs_that_stop_varying_mid_run_fire_from_that_step():
    x = np.random.default_rng(0).standard_normal((N, R, 16))
    cut = N // 2
    x[cut:] = 0.0
    [f] = run(build(data=inputs_fields(x)), "constant_inputs")
    assert f.severity == "error" and abs(f.steps[0] - cut) <= 2
    assert run(build(data=inputs_fields(np.random.default_rng(1).standard_normal((N, R, 16)))),
               "constant_inputs") == []
