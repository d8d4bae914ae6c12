"""The recorder's cadence: the cost budget, the flight recorder, the snapshot byte budget,
the multi-resolution summary, torch.compile, and batches changed in place (issue 9)."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from analysis.trace import open_trace
from recorders import TraceRecorder, TrainwreckWarning, schema
from recorders._cadence import Cadence
from tests._recorder_helpers import MLP, read, train

P, M, U = schema.MEASURED_PARAMS, schema.MEASURED_MODULES, schema.MEASURED_UPDATE


def _measured_share(tmp_path, name: str, pause: float) -> tuple[float, dict]:
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with TraceRecorder(tmp_path / f"{name}.h5", model, opt, dense_start=0, budget=0.25) as rec:
        train(model, opt, rec, 80, on_step=lambda i: time.sleep(pause) if pause else None)
    d = read(tmp_path / f"{name}.h5")
    return float((d["steps/measured"][20:] > 0).mean()), d


def test_budget_measures_a_slow_model_at_every_step_and_a_fast_one_sparsely(tmp_path):
    slow, _ = _measured_share(tmp_path, "slow", 0.02)  # a 20 ms step: 5 ms of budget each
    fast, d = _measured_share(tmp_path, "fast", 0.0)  # a sub-millisecond step
    assert slow - fast >= 0.2 and fast <= 0.5, (slow, fast)  # wall-clock: loose on a loaded machine
    flags = d["steps/measured"]
    assert len(d["steps/loss"]) == 80 and np.isfinite(d["steps/loss"]).all()  # cheap: every row
    assert np.isfinite(d["outputs/col_mean"]).all() and np.isfinite(d["inputs/feat_std"]).all()
    off = (flags & P) == 0
    assert off.any() and np.isnan(d["params/g_norm"][off]).all() and np.isnan(d["modules/a_std"][off]).all()
    assert np.isfinite(d["params/g_norm"][~off]).all()
    with open_trace(tmp_path / "fast.h5") as t:  # the reader says which rows hold data
        np.testing.assert_array_equal(t.measured("params"), ~off)
        assert np.isnan(t.param_stat("w_norm")[off]).all()


def _simulate(train_s: float, measure_s: float, cheap_s: float, steps: int = 2000) -> float:
    """Share of steps a Cadence measures under a fake clock: each step trains ``train_s``, costs
    ``measure_s`` when measured and ``cheap_s`` otherwise (budget 3 %, no dense start)."""
    cad = Cadence(0.03, dense_start=0, flight_steps=64, update_every=1)
    now, measured = 0.0, 0
    for i in range(steps):
        cad.enter(now)
        flags = cad.plan(i)
        cost = measure_s if flags else cheap_s
        measured += bool(flags)
        cad.leave(i, cost, flags)
        now += train_s + cost
    return measured / steps


def test_cadence_gives_a_slow_model_every_step_and_a_fast_one_its_budget():
    assert _simulate(0.100, 0.001, 1e-5) >= 0.99  # 3 ms of budget a step, 1 ms a measurement
    fast = _simulate(0.001, 0.001, 1e-5)  # 0.03 ms of budget a step: one step in ~34
    assert 0.015 <= fast <= 0.05, fast
    assert 0.2 <= _simulate(0.010, 0.001, 1e-5) <= 0.4  # in between: 0.3 ms a step


def test_fast_row_is_enter_note_leave_plan_in_one_call():
    """The recorder's fast path (one call a step) keeps the same books as the four calls."""
    a, b = Cadence(0.03, 5, 16, 2), Cadence(0.03, 5, 16, 2)
    rng = np.random.default_rng(0)
    t = 0.0
    for i in range(300):
        t += float(rng.uniform(1e-4, 1e-3))
        measured = i < 5 or i % 37 == 0
        t_out = t + float(rng.uniform(1e-6, 5e-5)) * (50 if measured else 1)
        value = float(rng.normal(1.0, 0.01)) * (3 if i == 150 else 1)  # one alarm-level loss
        plans = []
        for c in (a, b):
            if measured or c is a:
                c.enter(t)
                c.note_loss(value)
                c.leave(i, t_out - t, 3 if measured else 0)
                plans.append(c.plan(i + 1))
            else:
                plans.append(c.fast_row(i, t, t_out, value))
        assert plans[0] == plans[1]
        assert repr(sorted(vars(a).items())) == repr(sorted(vars(b).items()))
        t = t_out
    assert a.measure_cost is not None and a.cheap_cost is not None and math.isfinite(a.alarm_level)


def _run(tmp_path, steps: int, climb: int, nan_at: int, **options) -> tuple[list[float], dict]:
    """Train the test MLP; from step ``climb`` the loss doubles every step, at ``nan_at`` it is NaN."""
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    losses = []
    with TraceRecorder(tmp_path / "r.h5", model, opt, budget=1e-9, **options) as rec:
        for i in range(steps):
            x, y = torch.randn(16, 12, generator=gen), torch.randint(0, 4, (16,), generator=gen)
            opt.zero_grad()
            out = model(x)
            loss = nn.functional.cross_entropy(out, y) * 2.0 ** max(i - climb + 1, 0)
            loss = loss * math.nan if i >= nan_at else loss
            loss.backward()
            rec.step(loss, outputs=out, targets=y, inputs=x)
            opt.step()
            losses.append(float(loss.detach()))
    return losses, read(tmp_path / "r.h5")


def test_flight_recorder_measures_the_steps_before_a_nan_in_full(tmp_path):
    k0, k = 60, 66  # the loss climbs from step 60, the NaN comes at step 66
    losses, d = _run(tmp_path, 90, k0, k, dense_start=10, flight_steps=20)
    assert math.isnan(losses[k]) and all(math.isfinite(v) for v in losses[:k])
    flags = d["steps/measured"]
    assert (flags[10:k0] == 0).all()  # no budget: nothing measured before the trouble
    assert (flags[k - 4 : k] & P).all() and (flags[k - 3 : k] == P | M | U).all()  # the lead-up, in full
    assert flags[k] & P and (flags[k + 1 : k + 15] == P | M | U).all()


def test_a_sudden_nan_measures_its_own_step_and_the_next_ones(tmp_path):
    k = 40
    _, d = _run(tmp_path, 60, 10**9, k, dense_start=5, flight_steps=8)
    flags = d["steps/measured"]
    assert (flags[5:k] == 0).all() and flags[k] & P and (flags[k + 1 : k + 9] == P | M | U).all()
    assert d["params/g_nonfinite"][k].sum() > 0  # the NaN step's gradients, as they were
    assert list(d["snapshots/reason"]).count(3) == 1


def test_compiled_model_records_without_graph_break_recompile_or_hook_warning(tmp_path):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = MLP()
    compiled = torch.compile(model, backend="eager")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with TraceRecorder(tmp_path / "r.h5", compiled, opt, dense_start=3, budget=0.5) as rec:
            train(compiled, opt, rec, 8)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1  # no recompile
    texts = [str(w.message) for w in seen]
    assert not [t for t in texts if "global hooks" in t], texts
    ours = [w for w in seen if issubclass(w.category, TrainwreckWarning)]
    assert len(ours) == 1 and "torch.compile" in str(ours[0].message)
    d = read(tmp_path / "r.h5")
    assert not (d["steps/measured"] & M).any() and np.isnan(d["modules/a_mean"]).all()
    assert np.isfinite(d["params/g_norm"][:3]).all()


def test_snapshots_stay_within_their_byte_budget_log_spaced(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    size = 8 * sum(p.numel() for p in model.parameters())  # float32 weights + grads
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with TraceRecorder(tmp_path / "r.h5", model, opt, snapshot_every=1, snapshot_bytes=10 * size) as rec:
        train(model, opt, rec, 120)
    d = read(tmp_path / "r.h5")
    np.testing.assert_array_equal(d["snapshots/step"], [0, 1, 2, 3, 4, 8, 16, 32, 119])
    np.testing.assert_array_equal(d["snapshots/reason"], [1, 0, 0, 0, 0, 0, 0, 0, 2])
    stored = sum(v.nbytes for k, v in d.items() if k.startswith(("snapshots/weight/", "snapshots/grad/")))
    assert stored <= 10 * size


def test_summary_blocks_hold_min_max_mean_of_measured_rows(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with TraceRecorder(tmp_path / "r.h5", model, opt, summary_block=16, dense_start=20, budget=0.01) as rec:
        train(model, opt, rec, 300)
    d = read(tmp_path / "r.h5")
    np.testing.assert_array_equal(d["summary/b16/step"], np.arange(0, 300, 16))
    assert d["summary/b16/rows"].sum() == 300 and d["summary/b16/rows"][-1] == 300 % 16
    np.testing.assert_array_equal(d["summary/b256/step"], [0, 256])
    loss = d["steps/loss"]
    names = json.loads(d["attrs:summary/b16/series"]["names"])
    assert names[0] == "loss" and json.loads(d["attrs:summary/b16/params"]["names"])[1] == "g_norm"
    for b, (lo, hi, mean) in enumerate(d["summary/b16/series"][:, 0]):
        block = loss[16 * b : 16 * (b + 1)]
        np.testing.assert_allclose([lo, hi, mean], [block.min(), block.max(), block.mean()], rtol=1e-5)
    g = d["params/g_norm"][:, 0]
    for b, (lo, hi, mean) in enumerate(d["summary/b16/params"][:, 1, 0]):
        block = g[16 * b : 16 * (b + 1)]
        if np.isfinite(block).any():
            want = [np.nanmin(block), np.nanmax(block), np.nanmean(block)]
            np.testing.assert_allclose([lo, hi, mean], want, rtol=1e-5)
        else:
            assert np.isnan([lo, hi, mean]).all()  # no measured row: no value, never a guess
    with open_trace(tmp_path / "r.h5") as t:
        assert t.summary_levels() == [16, 256]
        steps, stats = t.summary("loss", max_blocks=5)
        np.testing.assert_array_equal(steps, [0, 256]) and stats.shape == (2, 3)
        steps, stats = t.summary("params/g_norm")
        assert len(steps) == 19 and stats.shape == (19, len(t.param_names), 3)
        with pytest.raises(KeyError):
            t.summary("no_such_series")


def test_a_batch_changed_in_place_after_rec_step_is_nan_then_copied(tmp_path):
    model = nn.Linear(6, 3)
    x = torch.randn(8, 6)
    with TraceRecorder(tmp_path / "r.h5", model) as rec:
        for i in range(3):
            out = model(x)
            out.pow(2).mean().backward()
            rec.step(out.pow(2).mean(), inputs=x)
            if i == 0:
                x.mul_(2.0)  # the same tensor, changed before the writer read it
    d = read(tmp_path / "r.h5")
    assert np.isnan(d["inputs/mean"][0])
    np.testing.assert_allclose(d["inputs/mean"][1], float(x.mean()), rtol=1e-5)
