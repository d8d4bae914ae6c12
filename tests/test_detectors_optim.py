"""Optimisation / numerics detectors: each fires on its failure and stays quiet otherwise.

Synthetic traces come from ``analysis.synthetic`` (a healthy run with any dataset
overridden); a few real runs of tiny models through the recorder check the ranking.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import analyze
from analysis.detectors import REGISTRY
from analysis.synthetic import synthetic_arrays
from analysis.trace import Trace

MINE = ("lr_too_high", "lr_too_low", "exploding_gradients", "vanishing_gradients", "large_init",
        "symmetric_init", "dead_relu", "saturated_activations", "over_regularization", "frozen_weights",
        "missing_zero_grad", "loss_diverging", "loss_plateau", "nonfinite")
N = 300
LN4 = float(np.log(4))  # constant-prediction loss of the synthetic 4-class targets (about)
DEEP_PARAMS = tuple(
    (f"l{i}.{kind}", f"l{i}", (32, 32) if kind == "weight" else (32,))
    for i in range(6) for kind in ("weight", "bias"))


def make(n: int = N, params=None, modules=None, meta=None, seed: int = 0, **overrides) -> Trace:
    """A synthetic trace; keyword ``group__stat`` overrides ``group/stat`` (callables get the data)."""
    kwargs = {}
    if params is not None:
        kwargs["params"] = params
    if modules is not None:
        kwargs["modules"] = modules
    data, attrs = synthetic_arrays(n, meta=meta, seed=seed, **kwargs)
    for key, value in overrides.items():
        path = key.replace("__", "/")
        data[path] = np.asarray(value(data) if callable(value) else value)
    return Trace.from_arrays(data, attrs)


def run(code: str, trace: Trace):
    """The findings of one detector (the runner's requirement check included)."""
    report = analyze(trace, codes=[code])
    assert not report.notes, report.notes
    return [f for f in report.findings if f.code == code]


def fired(code: str, trace: Trace, severity: str | None = None):
    found = run(code, trace)
    assert found, f"{code} did not fire"
    f = found[0]
    assert f.kind == REGISTRY[code].kind and 0 <= f.confidence <= 1
    assert f.evidence and f.fix and f.title
    assert f.steps[0] <= f.steps[1]
    if severity:
        assert f.severity == severity, (f.severity, f.evidence)
    return f


def quiet(code: str, trace: Trace) -> None:
    found = [f for f in run(code, trace) if f.severity != "info"]
    assert not found, [(f.severity, f.evidence) for f in found]


def flat_loss(n: int = N, level: float = LN4, seed: int = 0) -> np.ndarray:
    return level + 0.01 * np.random.default_rng(seed).standard_normal(n)


def rising_loss(n: int = N) -> np.ndarray:
    t = np.arange(n)
    return np.where(t < n // 3, 1.4 - 0.9 * t / (n // 3), 0.5 + 0.08 * (t - n // 3))


def per_param(values, n: int = N) -> np.ndarray:
    return np.tile(np.asarray(values, np.float32), (n, 1))


# ----------------------------------------------------------------------------- healthy runs
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [3, 40, 600])
def test_healthy_synthetic_runs_raise_no_warning(seed, n):
    report = analyze(make(n, seed=seed), codes=MINE)
    assert not report.problems(), [(f.code, f.evidence) for f in report.problems()]


def test_healthy_deep_tanh_run_raises_no_warning():
    modules = tuple((f"l{i}", "Linear") for i in range(6))
    modules = tuple(m for i in range(6) for m in ((f"l{i}", "Linear"), (f"a{i}", "Tanh")))[:-1]
    report = analyze(make(params=DEEP_PARAMS, modules=modules, seed=3), codes=MINE)
    assert not report.problems(), [(f.code, f.evidence) for f in report.problems()]


def test_nan_and_inf_everywhere_do_not_crash_any_detector():
    def poison(data):
        a = np.array(data["params/g_norm"])
        a[::7] = np.nan
        a[5, 0] = np.inf
        return a

    t = make(60, params__g_norm=poison, params__update_ratio=np.full((60, 4), np.nan),
             steps__loss=np.full(60, np.nan), modules__a_sat_frac=np.full((60, 3), np.inf))
    for code in MINE:
        run(code, t)  # must not raise (TRAINWRECK_STRICT=1 re-raises inside the runner)


# ----------------------------------------------------------------------------- lr_too_high
def test_lr_too_high_fires_on_large_updates_and_a_diverging_loss():
    f = fired("lr_too_high", make(params__update_ratio=np.full((N, 4), 0.4, np.float32),
                                  steps__loss=rising_loss()), "error")
    assert "0.4" in f.evidence and "lower the learning rate" in f.fix


def test_lr_too_high_quiet_when_updates_are_normal_or_the_loss_is_fine():
    quiet("lr_too_high", make(steps__loss=rising_loss()))  # ratio 1e-3
    quiet("lr_too_high", make(params__update_ratio=np.full((N, 4), 0.4, np.float32)))  # loss falls


def test_lr_too_high_defers_to_missing_zero_grad():
    f = fired("lr_too_high", make(params__update_ratio=np.full((N, 4), 0.4, np.float32),
                                  steps__loss=rising_loss(), steps__grad_carry=np.full(N, 0.95, np.float32)))
    assert f.severity == "warning" and "zero_grad" in f.evidence


# ----------------------------------------------------------------------------- lr_too_low
SGD_1E5 = {"optimizer": {"class": "SGD", "param_groups": [{"lr": 1e-5, "weight_decay": 0.0, "params": []}]}}


def test_lr_too_low_fires_on_negligible_updates_and_a_flat_loss():
    f = fired("lr_too_low", make(meta=SGD_1E5, steps__lr=np.full((N, 1), 1e-5),
                                 params__update_ratio=np.full((N, 4), 2e-7, np.float32),
                                 steps__loss=flat_loss()), "error")
    assert "raise the learning rate from 1e-05" in f.fix


def test_lr_too_low_is_not_claimed_when_adam_steps_are_small_because_gradients_are_zero():
    # Adam at lr 1e-3 moves weights of rms 0.25 by ~4e-3 for any non-zero gradient
    f = fired("lr_too_low", make(params__update_ratio=np.full((N, 4), 2e-7, np.float32),
                                 steps__loss=flat_loss()), "info")
    assert "gradients are ~0" in f.evidence


def test_lr_too_low_quiet_when_the_loss_learns_or_updates_are_normal():
    quiet("lr_too_low", make(params__update_ratio=np.full((N, 4), 2e-7, np.float32)))
    quiet("lr_too_low", make(steps__loss=flat_loss()))


# ----------------------------------------------------------------------------- gradients
def test_exploding_gradients_fire_on_growth_by_orders_of_magnitude():
    growth = np.logspace(0, 5, N)[:, None]
    f = fired("exploding_gradients", make(params__g_norm=lambda d: d["params/g_norm"] * growth,
                                          steps__loss=rising_loss()), "error")
    assert "rose" in f.evidence and "clip" in f.fix


def test_exploding_gradients_quiet_on_steady_gradients():
    quiet("exploding_gradients", make(steps__loss=rising_loss()))


def test_exploding_gradient_spikes_count_only_when_the_loss_does_not_learn():
    spiky = np.ones((N, 1))
    spiky[[100, 180, 250]] = 500.0

    def spike(d):
        return d["params/g_norm"] * spiky

    f = fired("exploding_gradients", make(params__g_norm=spike, steps__loss=flat_loss()), "warning")
    assert "spikes" in f.evidence
    quiet("exploding_gradients", make(params__g_norm=spike))


def deep_grads(decay_per_layer: float) -> np.ndarray:
    w = np.tile([np.sqrt(32 * 32) / np.sqrt(32), 1.0], 6)
    depth = np.repeat(np.arange(6), 2)
    return per_param(w * 0.05 * decay_per_layer ** (5 - depth))


def deep_weights() -> np.ndarray:
    return per_param(np.tile([np.sqrt(32 * 32) / np.sqrt(32), 1.0], 6))


def test_vanishing_gradients_fire_when_relative_gradients_shrink_towards_the_input():
    t = make(params=DEEP_PARAMS, modules=tuple((f"l{i}", "Linear") for i in range(6)),
             params__g_norm=deep_grads(0.1), params__w_norm=deep_weights(), steps__loss=flat_loss())
    f = fired("vanishing_gradients", t, "error")
    assert f.layer == "l0" and "1e+05x smaller" in f.evidence


def test_vanishing_gradients_quiet_on_a_flat_depth_profile_or_shallow_model():
    t = make(params=DEEP_PARAMS, modules=tuple((f"l{i}", "Linear") for i in range(6)),
             params__g_norm=deep_grads(0.9), params__w_norm=deep_weights(), steps__loss=flat_loss())
    quiet("vanishing_gradients", t)
    quiet("vanishing_gradients", make(steps__loss=flat_loss()))  # 2 weight layers only


# ----------------------------------------------------------------------------- initialisation
def tanh_modules():
    return (("fc1", "Linear"), ("act", "Tanh"), ("fc2", "Linear"))


def test_large_init_fires_on_oversized_weights_that_saturate_from_step_0():
    std = lambda d: np.where(np.arange(4) == 0, 5.0, d["params/w_std"]).astype(np.float32)  # noqa: E731
    sat = np.tile([np.nan, 0.95, np.nan], (N, 1)).astype(np.float32)
    f = fired("large_init", make(modules=tanh_modules(), params__w_std=std, modules__a_sat_frac=sat,
                                 steps__loss=flat_loss()), "error")
    assert f.layer == "fc1" and "fan_in" in f.evidence and "kaiming" in f.fix


def test_large_init_quiet_on_default_scale():
    sat = np.tile([np.nan, 0.95, np.nan], (N, 1)).astype(np.float32)
    quiet("large_init", make(modules=tanh_modules(), modules__a_sat_frac=sat))


def test_symmetric_init_fires_on_a_constant_matrix_that_stays_constant():
    const = lambda d: np.where(np.arange(4) == 0, 0.0, d["params/w_std"]).astype(np.float32)  # noqa: E731
    mean = np.tile([0.1, 0, 0, 0], (N, 1)).astype(np.float32)
    t = make(params__w_std=const, params__w_mean=mean, steps__loss=flat_loss())
    f = fired("symmetric_init", t, "error")
    assert f.layer == "fc1" and "0.1" in f.evidence


def test_symmetric_init_uses_snapshots_identical_rows_persisting_or_broken():
    rng = np.random.default_rng(0)
    row = rng.standard_normal(16).astype(np.float32)
    same = np.tile(row, (32, 1))
    snaps = {"snapshots__step": np.array([0, N - 1]), "snapshots__reason": np.array([1, 2], np.int8),
             "snapshots__weight__p2": np.stack([rng.standard_normal((4, 32))] * 2).astype(np.float32)}
    t = make(steps__loss=flat_loss(), snapshots__weight__p0=np.stack([same, same + 1e-9]), **snaps)
    assert fired("symmetric_init", t).severity == "error"
    broken = np.stack([same, same + rng.standard_normal((32, 16)).astype(np.float32)])
    quiet("symmetric_init", make(snapshots__weight__p0=broken, **snaps))
    random = np.stack([rng.standard_normal((32, 16))] * 2)
    quiet("symmetric_init", make(snapshots__weight__p0=random, **snaps))


# ----------------------------------------------------------------------------- activations
def test_dead_relu_fires_on_units_that_never_fire_in_late_windows():
    alive = np.ones((6, 32), np.uint8)
    alive[:, :29] = 0
    dead = np.tile([0.0, 0.9, 0.0], (N, 1)).astype(np.float32)
    f = fired("dead_relu", make(modules__a_dead_frac=dead, units__step=np.arange(1, 7) * 50 - 1,
                                units__alive__m1=alive, steps__loss=flat_loss()), "error")
    assert f.layer == "act" and "29/32" in f.evidence and "initialisation" in f.evidence


def test_dead_relu_quiet_with_a_few_dead_units():
    alive = np.ones((6, 32), np.uint8)
    alive[:, :5] = 0
    quiet("dead_relu", make(modules__a_dead_frac=np.tile([0.0, 0.15, 0.0], (N, 1)).astype(np.float32),
                            units__step=np.arange(1, 7) * 50 - 1, units__alive__m1=alive))


def test_saturated_activations_fire_on_a_pinned_hidden_tanh_but_not_on_the_output():
    sat = np.tile([np.nan, 0.92, np.nan], (N, 1)).astype(np.float32)
    f = fired("saturated_activations", make(modules=tanh_modules(), modules__a_sat_frac=sat,
                                            steps__loss=flat_loss()), "error")
    assert f.layer == "act"
    out = (("fc1", "Linear"), ("act", "ReLU"), ("fc2", "Linear"), ("out", "Sigmoid"))
    sat_out = np.tile([np.nan, np.nan, np.nan, 0.99], (N, 1)).astype(np.float32)
    quiet("saturated_activations", make(modules=out, modules__a_sat_frac=sat_out))
    quiet("saturated_activations", make(modules=tanh_modules()))


# ----------------------------------------------------------------------------- regularisation
def test_over_regularization_fires_on_weights_decayed_to_nothing_with_a_stuck_loss():
    shrink = np.exp(-np.arange(N) / 30)[:, None]
    meta = {"optimizer": {"class": "SGD", "param_groups": [{"lr": 0.1, "weight_decay": 0.5, "params": []}]}}
    f = fired("over_regularization", make(meta=meta, params__w_norm=lambda d: d["params/w_norm"] * shrink,
                                          steps__loss=flat_loss()), "error")
    assert "weight_decay 0.5" in f.evidence and "lower weight_decay" in f.fix


def test_over_regularization_fires_on_heavy_dropout_and_stays_quiet_when_the_loss_learns():
    model = {"class": "Sequential", "modules": [{"name": "drop", "type": "Dropout", "args": {"p": 0.9}}]}
    f = fired("over_regularization", make(meta={"model": model}, steps__loss=flat_loss()), "error")
    assert f.layer == "drop" and "p=0.9" in f.fix
    quiet("over_regularization", make(meta={"model": model}))
    group = {"lr": 1e-3, "weight_decay": 1e-2, "params": []}
    small = {"optimizer": {"class": "AdamW", "param_groups": [group]}}
    quiet("over_regularization", make(meta=small, steps__loss=flat_loss()))


# ----------------------------------------------------------------------------- frozen, zero_grad
def test_frozen_weights_fire_when_nothing_is_in_the_optimizer():
    t = make(params__update_ratio=np.zeros((N, 4), np.float32), params__in_optimizer=np.zeros(4, bool),
             steps__loss=flat_loss())
    f = fired("frozen_weights", t, "error")
    assert "model.parameters()" in f.fix


def test_without_a_known_optimizer_in_optimizer_flags_mean_nothing():
    drift = 1 + 1e-3 * np.arange(N)[:, None]
    t = make(meta={"optimizer": None}, params__in_optimizer=np.zeros(4, bool),
             params__w_norm=lambda d: d["params/w_norm"] * drift)
    for code in MINE:
        quiet(code, t)
    t = make(meta={"optimizer": None}, params__in_optimizer=np.zeros(4, bool),
             params__update_ratio=np.zeros((N, 4), np.float32), steps__loss=flat_loss())
    f = fired("frozen_weights", t, "error")
    assert "optimizer param group" not in f.evidence and "never updated" in f.evidence


def test_frozen_backbone_with_a_learning_head_is_only_info():
    upd = np.tile(np.float32([0, 0, 1e-3, 1e-3]), (N, 1))
    t = make(params__update_ratio=upd, params__requires_grad=np.array([False, False, True, True]),
             params__g_norm=lambda d: np.where(np.arange(4) < 2, np.nan, d["params/g_norm"]))
    f = fired("frozen_weights", t, "info")
    assert "fc1.weight" in f.evidence and "deliberate" in f.evidence
    quiet("frozen_weights", make())


def test_missing_zero_grad_fires_on_carried_gradients_only():
    carry = np.r_[0.0, 1 - 1 / np.arange(2, N + 1)].astype(np.float32)
    f = fired("missing_zero_grad", make(steps__grad_carry=carry), "error")
    assert "zero_grad()" in f.fix
    quiet("missing_zero_grad", make())
    quiet("missing_zero_grad", make(steps__grad_carry=np.full(N, np.nan, np.float32)))


def test_missing_zero_grad_tells_accumulation_from_zeroing_once_per_epoch():
    k = np.arange(N)
    accumulate = np.where(k % 4 == 0, 0.0, 1 - 1 / (k % 4 + 1)).astype(np.float32)  # zero every 4
    quiet("missing_zero_grad", make(steps__grad_carry=accumulate))
    per_epoch = np.where(k % 50 == 0, 0.0, 1 - 1 / (k % 50 + 1)).astype(np.float32)
    f = fired("missing_zero_grad", make(steps__grad_carry=per_epoch), "warning")
    assert "every ~50 steps" in f.evidence


# ----------------------------------------------------------------------------- loss symptoms
def test_loss_diverging_on_a_rise_and_on_nan_but_not_on_a_converged_wobble():
    assert fired("loss_diverging", make(steps__loss=rising_loss())).severity == "error"
    nan = np.r_[np.linspace(1.4, 0.5, N - 20), np.full(20, np.nan)]
    f = fired("loss_diverging", make(steps__loss=nan), "error")
    assert f.steps[0] == N - 20
    quiet("loss_diverging", make())
    wobble = np.r_[np.linspace(1.4, 1e-6, N // 2), 1e-6 * (1 + 5 * (np.arange(N - N // 2) % 2))]
    quiet("loss_diverging", make(steps__loss=wobble))


def test_loss_plateau_only_when_stuck_near_the_constant_prediction_level():
    f = fired("loss_plateau", make(steps__loss=flat_loss()), "warning")
    assert "constant prediction" in f.evidence
    quiet("loss_plateau", make())  # converged far below ln 4
    quiet("loss_plateau", make(steps__loss=np.linspace(LN4, 0.3, N)))  # still improving steadily
    slow = np.linspace(LN4, 0.93 * LN4, 40) + 0.005 * np.random.default_rng(1).standard_normal(40)
    quiet("loss_plateau", make(40, steps__loss=slow))  # a short run, still going down steadily
    stuck_after_drop = np.r_[np.linspace(8.0, LN4, 30), flat_loss(N - 30)]  # huge init loss, then chance
    assert fired("loss_plateau", make(steps__loss=stuck_after_drop))


def test_nonfinite_names_the_first_layer_in_forward_order():
    act = np.zeros((N, 3), np.float32)
    act[120:, 1:] = 5  # act and fc2 outputs from step 120
    grads = np.zeros((N, 4), np.float32)
    grads[120:, :] = 3
    loss = np.r_[np.linspace(1.4, 0.5, 120), np.full(N - 120, np.nan)]
    t = make(modules__a_nonfinite=act, params__g_nonfinite=grads, steps__loss=loss)
    f = fired("nonfinite", t, "error")
    assert f.steps[0] == 120 and f.layer == "act" and "gradient of fc1.weight" in f.evidence
    quiet("nonfinite", make())


def test_nonfinite_weights_before_the_forward_pass_come_first():
    w = np.zeros((N, 4), np.float32)
    w[50:, 2] = 1
    act = np.zeros((N, 3), np.float32)
    act[50:, 2] = 4
    f = fired("nonfinite", make(params__w_nonfinite=w, modules__a_nonfinite=act))
    assert f.layer == "fc2"
    assert f.evidence.startswith("first non-finite value at step 50: weights of fc2.weight")


# ----------------------------------------------------------------------------- real runs
def _train(tmp_path, name: str, *, lr: float, opt: str = "adam", zero_grad: bool = True, steps: int = 120):
    import torch
    from torch import nn

    from recorders import TraceRecorder

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=g)
    y = (x[:, :3] @ torch.randn(3, 3, generator=g)).argmax(1)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    optim = (torch.optim.Adam if opt == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    path = str(tmp_path / f"{name}.h5")
    with TraceRecorder(path, model, optimizer=optim, loss_fn=loss_fn) as rec:
        for _ in range(steps):
            i = torch.randint(0, 512, (32,), generator=g)
            if zero_grad:
                optim.zero_grad()
            out = model(x[i])
            loss = loss_fn(out, y[i])
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=y[i], inputs=x[i])
            optim.step()
    return analyze(path)


def test_real_runs_rank_the_right_cause_first_and_stay_clean_when_healthy(tmp_path):
    healthy = _train(tmp_path, "healthy", lr=3e-3)
    assert not [f for f in healthy.problems() if f.code in MINE], healthy.codes()
    high = _train(tmp_path, "high", lr=1.0)
    assert high.findings[0].code == "lr_too_high", [(f.code, f.severity) for f in high.findings]
    acc = _train(tmp_path, "acc", lr=0.02, opt="sgd", zero_grad=False)
    assert acc.findings[0].code == "missing_zero_grad", [(f.code, f.severity) for f in acc.findings]
    assert json.dumps(acc.to_json())
