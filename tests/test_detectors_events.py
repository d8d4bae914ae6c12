"""The late-onset and data-order detectors on synthetic traces: each fires, with its onset, and
stays quiet on the healthy look-alikes (warm restarts, a planned lr drop, a curriculum switch,
a plateau at a good value, normal noisy loss)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import analyze
from analysis.synthetic import synthetic_arrays
from analysis.trace import Trace
from recorders import schema as S

N = 2000


def _trace(data, attrs) -> Trace:
    return Trace.from_arrays(data, attrs, path="<synthetic>")


def _base(n: int = N, seed: int = 0, **kw):
    return synthetic_arrays(n, seed=seed, **kw)


def _noisy_loss(n: int, rng, floor: float = 0.1, sigma: float = 0.15) -> np.ndarray:
    t = np.arange(n)
    return (floor + 2.2 * np.exp(-t / (n / 8))) * np.exp(sigma * rng.standard_normal(n))


def _find(trace: Trace, code: str):
    report = analyze(trace, codes=[code])
    hits = [f for f in report.findings if f.code == code]
    return hits[0] if hits else None


def _problems(trace: Trace) -> list[str]:
    return [f"{f.code}:{f.severity}" for f in analyze(trace).problems()]


# ----------------------------------------------------------------------------- loss_spike
def test_loss_spike_fires_at_the_spikes():
    data, attrs = _base()
    rng = np.random.default_rng(1)
    loss = _noisy_loss(N, rng)
    loss[[800, 1500]] *= 30
    data[S.LOSS] = loss
    f = _find(_trace(data, attrs), "loss_spike")
    assert f is not None and f.severity == "warning"
    assert f.steps[0] == 800 and f.marks["events"] == [800, 1500]
    loss[1500] /= 30
    f = _find(_trace(data, attrs), "loss_spike")
    assert f is not None and f.severity == "info" and f.steps[0] == 800


@pytest.mark.parametrize("shape", ["noisy", "warm_restarts", "lr_drop", "near_zero"])
def test_loss_spike_quiet_on_normal_loss_curves(shape):
    data, attrs = _base()
    rng = np.random.default_rng(2)
    t = np.arange(N)
    if shape == "noisy":
        loss = _noisy_loss(N, rng, sigma=0.35)
    elif shape == "warm_restarts":  # SGDR: the loss jumps when the lr does, then decays for long
        phase = t % 500
        loss = 0.1 + 0.5 * np.exp(-phase / 80) + 1.7 * np.exp(-t / 200)
        loss = loss * np.exp(0.1 * rng.standard_normal(N))
    elif shape == "lr_drop":
        loss = np.where(t < 1200, 0.5, 0.2) * np.exp(0.2 * rng.standard_normal(N)) + 1.8 * np.exp(-t / 100)
    else:  # converged near zero: large relative noise, tiny absolute values
        loss = (1e-3 + 2.3 * np.exp(-t / 100)) * np.exp(0.8 * rng.standard_normal(N))
    data[S.LOSS] = loss
    f = _find(_trace(data, attrs), "loss_spike")
    assert f is None or f.severity == "info", f


# ----------------------------------------------------------------------------- data_outlier
def _with_bad_batch(row: int, what: str):
    data, attrs = _base()
    rng = np.random.default_rng(3)
    loss = _noisy_loss(N, rng)
    if what == "inputs":
        data[f"{S.INPUTS}/maxabs"] = data[f"{S.INPUTS}/maxabs"].copy()
        data[f"{S.INPUTS}/std"] = data[f"{S.INPUTS}/std"].copy()
        data[f"{S.INPUTS}/maxabs"][row] *= 1e3
        data[f"{S.INPUTS}/std"][row] *= 60
    else:
        data[f"{S.INPUTS}/nonfinite"] = data[f"{S.INPUTS}/nonfinite"].copy()
        data[f"{S.INPUTS}/nonfinite"][row] = 3
    loss[row] = 5e3 if what == "inputs" else np.nan
    loss[row + 1:] = np.nan
    data[S.LOSS] = loss
    return data, attrs


@pytest.mark.parametrize("what", ["inputs", "nan_in_data"])
def test_data_outlier_names_the_bad_batch(what):
    f = _find(_trace(*_with_bad_batch(1550, what)), "data_outlier")
    assert f is not None and f.severity == "error"
    assert f.steps[0] == 1550 and 1550 in f.marks["events"]


def test_data_outlier_ranks_first_on_a_late_blow_up():
    report = analyze(_trace(*_with_bad_batch(1550, "inputs")))
    causes = [f for f in report.findings if f.kind == "cause"]
    assert causes and causes[0].code == "data_outlier"


def test_data_outlier_quiet_on_a_lasting_scale_change_and_heavy_tails():
    data, attrs = _base()
    rng = np.random.default_rng(4)
    scale = np.where(np.arange(N) < 1000, 1.0, 8.0)  # a curriculum switch to raw-scale data
    data[f"{S.INPUTS}/maxabs"] = data[f"{S.INPUTS}/maxabs"] * scale * np.exp(0.4 * rng.standard_normal(N))
    data[f"{S.INPUTS}/std"] = data[f"{S.INPUTS}/std"] * scale
    f = _find(_trace(data, attrs), "data_outlier")
    assert f is None or f.severity == "info"


def test_data_outlier_absorbed_batch_is_info():
    data, attrs = _base()
    data[f"{S.INPUTS}/maxabs"] = data[f"{S.INPUTS}/maxabs"].copy()
    data[f"{S.INPUTS}/maxabs"][900] *= 50
    f = _find(_trace(data, attrs), "data_outlier")
    assert f is not None and f.severity == "info"


# ----------------------------------------------------------------------------- unstable_loss
def _confident_then_inf(loss_class: str = "neg_log_softmax", blow_outputs: bool = False):
    data, attrs = _base(meta={"loss": {"class": loss_class, "args": {}}})
    rng = np.random.default_rng(5)
    t = np.arange(N)
    loss = 0.002 + 2.3 * np.exp(-t / 150) * np.exp(0.1 * rng.standard_normal(N))
    loss[1400] = np.inf
    loss[1401:] = np.nan
    data[S.LOSS] = loss
    grow = 1 + t / 100  # logits grow as the model gets confident
    data[f"{S.OUTPUTS}/min"] = -grow
    data[f"{S.OUTPUTS}/max"] = grow.copy()
    nf = np.zeros(N, np.float32)
    nf[1401:] = 64
    data[f"{S.OUTPUTS}/nonfinite"] = nf
    if blow_outputs:
        data[f"{S.OUTPUTS}/max"][1400] = 1e9
    return data, attrs


def test_unstable_loss_fires_at_the_first_inf():
    f = _find(_trace(*_confident_then_inf()), "unstable_loss")
    assert f is not None and f.severity == "error" and f.steps[0] == 1400


@pytest.mark.parametrize("variant", ["stable_loss", "outputs_blew_up"])
def test_unstable_loss_quiet_when_the_loss_is_not_to_blame(variant):
    if variant == "stable_loss":
        data, attrs = _confident_then_inf("CrossEntropyLoss")
    else:
        data, attrs = _confident_then_inf(blow_outputs=True)
    assert _find(_trace(data, attrs), "unstable_loss") is None


# ----------------------------------------------------------------------------- overfitting
def _with_val(train: np.ndarray, val: np.ndarray, every: int = 100):
    data, attrs = _base()
    data[S.LOSS] = train
    vs = np.arange(every - 1, N, every)[: len(val)]
    names = np.array(["val_loss"] + [""] * (S.SCALAR_CAPACITY - 1), dtype=object)
    data.update({S.SCALAR_NAMES: names, S.SCALAR_STEP: vs.astype(np.int64),
                 S.SCALAR_ID: np.zeros(len(vs), np.int32), S.SCALAR_VALUE: np.asarray(val, float)})
    return _trace(data, attrs)


def test_overfitting_fires_when_val_turns():
    rng = np.random.default_rng(6)
    t = np.arange(N)
    train = (0.01 + 2.3 * np.exp(-t / 300)) * np.exp(0.1 * rng.standard_normal(N))
    k = np.arange(20)
    val = 0.4 + 1.9 * np.exp(-k / 2.0) + np.where(k > 6, 0.06 * (k - 6), 0.0)
    f = _find(_with_val(train, val), "overfitting")
    assert f is not None and f.severity == "error"
    assert 599 <= f.steps[0] <= 899, f.steps
    assert f.marks["lane"] == "val_loss"


def test_overfitting_fires_when_train_loss_memorises_and_val_stays_flat():
    t = np.arange(N)
    train = np.maximum(2.3 * np.exp(-t / 60), 1.8e-7)
    val = np.full(20, 0.35) + 0.002 * np.sin(np.arange(20))
    f = _find(_with_val(train, val), "overfitting")
    assert f is not None and f.severity == "error"


@pytest.mark.parametrize("case", ["tracking", "plateau_good", "noisy_val"])
def test_overfitting_quiet_when_val_follows_train(case):
    rng = np.random.default_rng(7)
    t = np.arange(N)
    train = (0.05 + 2.3 * np.exp(-t / 300)) * np.exp(0.1 * rng.standard_normal(N))
    k = np.arange(20)
    val = 0.08 + 2.2 * np.exp(-k * 100 / 300)
    if case == "plateau_good":
        train = np.where(t > 600, 0.05, train)
        val = np.where(k > 6, 0.08, val)
    if case == "noisy_val":
        val = val * np.exp(0.05 * rng.standard_normal(20))
    f = _find(_with_val(train, val), "overfitting")
    assert f is None or f.severity == "info", f


# ----------------------------------------------------------------------------- undertrained
def test_undertrained_fires_when_still_falling():
    rng = np.random.default_rng(8)
    t = np.arange(N)
    data, attrs = _base()
    data[S.LOSS] = (2.3 - 1.3 * t / N) * np.exp(0.05 * rng.standard_normal(N))
    f = _find(_trace(data, attrs), "undertrained")
    assert f is not None and f.severity == "warning" and f.steps == [0, N - 1]


@pytest.mark.parametrize("case", ["converged", "plateau_good", "near_zero", "annealed"])
def test_undertrained_quiet_on_finished_runs(case):
    rng = np.random.default_rng(9)
    t = np.arange(N)
    data, attrs = _base()
    if case == "converged":
        loss = 0.1 + 2.2 * np.exp(-t / 250)
    elif case == "plateau_good":
        loss = np.where(t < 500, 2.3 - 4.4e-3 * t, 0.1)
    elif case == "near_zero":  # still halving, but by tiny absolute amounts
        loss = 2.3 * np.exp(-t / 120) + 0.03 * np.exp(-t / 1500)
    else:  # cosine schedule to 0: the loss flattens as the lr does
        loss = 0.3 + 2.0 * (1 - np.sin(np.pi / 2 * np.minimum(t / (0.8 * N), 1.0)))
    data[S.LOSS] = loss * np.exp(0.08 * rng.standard_normal(N))
    assert _find(_trace(data, attrs), "undertrained") is None


# ----------------------------------------------------------------------------- class mix
def _labels_trace(labels: np.ndarray, classes: int = 10, target_shape: list[int] | None = None):
    n, rows = labels.shape
    data, attrs = _base(n, classes=classes, rows=rows)
    if target_shape is not None:
        attrs[S.TARGETS] = {"kind": "index", "shape": json.dumps(target_shape), "dtype": "int64",
                            "columns": 1}
    hist = np.stack([np.bincount(r, minlength=classes) for r in labels])
    data[f"{S.TARGETS}/class_hist"] = hist.astype(np.int32)
    data[f"{S.TARGETS}/sample"] = labels[..., None].astype(np.float32)
    return _trace(data, attrs)


def test_missing_classes_fires_when_classes_never_occur():
    rng = np.random.default_rng(10)
    f = _find(_labels_trace(rng.integers(0, 7, size=(N, 16))), "missing_classes")
    assert f is not None and f.severity == "error" and f.steps[0] == 0
    assert "7, 8, 9" in f.evidence


def test_missing_classes_fires_when_classes_stop_occurring():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 10, size=(N, 16))
    labels[1200:] = rng.integers(0, 8, size=(N - 1200, 16))
    f = _find(_labels_trace(labels), "missing_classes")
    assert f is not None and f.severity == "error" and 1190 <= f.steps[0] <= 1200


def test_missing_classes_quiet_when_every_class_occurs():
    rng = np.random.default_rng(12)
    labels = rng.integers(0, 10, size=(N, 16))
    labels[:, 0] = np.where(rng.random(N) < 0.002, 9, labels[:, 0])
    assert _find(_labels_trace(labels), "missing_classes") is None


def _sorted_labels(n: int, per_class_batches: int = 3, rows: int = 16, classes: int = 10) -> np.ndarray:
    order = (np.arange(n) // per_class_batches) % classes
    return np.repeat(order[:, None], rows, axis=1)


def test_unshuffled_fires_on_sorted_batches_from_the_switch():
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 10, size=(N, 16))
    labels[900:] = _sorted_labels(N - 900)
    f = _find(_labels_trace(labels), "unshuffled_data")
    assert f is not None and f.severity == "error" and 880 <= f.steps[0] <= 920, f.steps
    report = analyze(_labels_trace(labels))
    assert "missing_classes" not in report.codes()


def test_unshuffled_fires_on_target_sorted_regression():
    data, attrs = _base(meta={"loss": {"class": "MSELoss", "args": {}}})
    y = np.sort(np.random.default_rng(14).standard_normal(N * 16)).reshape(N, 16)
    y = np.concatenate([y[::2], y[1::2][::-1]])  # up then down, like epochs over sorted data
    attrs[S.TARGETS] = {"kind": "dense", "shape": json.dumps([16]), "dtype": "float32", "columns": 1}
    data.update({f"{S.TARGETS}/mean": y.mean(1), f"{S.TARGETS}/std": y.std(1),
                 f"{S.TARGETS}/min": y.min(1), f"{S.TARGETS}/max": y.max(1),
                 f"{S.TARGETS}/sample": y[..., None].astype(np.float32),
                 f"{S.TARGETS}/class_hist": y.sum(1, keepdims=True).astype(np.float32)})
    f = _find(_trace(data, attrs), "unshuffled_data")
    assert f is not None and f.steps[0] == 0


@pytest.mark.parametrize("case", ["shuffled", "stratified", "curriculum"])
def test_unshuffled_quiet_on_random_and_curriculum_batches(case):
    rng = np.random.default_rng(15)
    if case == "shuffled":
        labels = rng.integers(0, 10, size=(N, 16))
    elif case == "stratified":
        labels = np.stack([rng.permutation(np.arange(16) % 10) for _ in range(N)])
    else:  # classes 0-4 first, then all ten
        labels = np.concatenate([rng.integers(0, 5, size=(600, 16)), rng.integers(0, 10, size=(N - 600, 16))])
    f = _find(_labels_trace(labels), "unshuffled_data")
    assert f is None, f
    assert not _problems(_labels_trace(labels))


def test_data_outlier_on_a_budgeted_cadence():
    """Inputs measured on every 8th row only (NaN elsewhere), the bad batch's row kept in full
    (the flight recorder): the outlier is judged against the nearest measured rows."""
    data, attrs = _with_bad_batch(1550, "inputs")
    unmeasured = np.ones(N, bool)
    unmeasured[::8] = False
    unmeasured[1550] = False
    for field in ("maxabs", "std", "mean", "nonfinite"):
        col = np.asarray(data[f"{S.INPUTS}/{field}"], np.float64).copy()
        col[unmeasured] = np.nan
        data[f"{S.INPUTS}/{field}"] = col
    f = _find(_trace(data, attrs), "data_outlier")
    assert f is not None and f.severity == "error" and f.steps[0] == 1550


def test_missing_classes_is_info_for_token_targets_with_unused_ids():
    rng = np.random.default_rng(16)
    f = _find(_labels_trace(rng.integers(0, 7, size=(N, 16)), target_shape=[4, 4]), "missing_classes")
    assert f is not None and f.severity == "info"


def test_missing_classes_quiet_when_sorted_batches_end_mid_epoch():
    rng = np.random.default_rng(17)
    labels = rng.integers(0, 10, size=(N, 16))
    labels[1000:] = _sorted_labels(N - 1000, per_class_batches=40)  # ends inside class 4's stretch
    report = analyze(_labels_trace(labels))
    causes = [f.code for f in report.findings if f.kind == "cause"]
    assert causes and causes[0] == "unshuffled_data", causes
