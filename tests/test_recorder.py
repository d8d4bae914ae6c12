"""TraceRecorder: what lands in the trace, checked against the tensors themselves."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from recorders import TraceRecorder, schema
from recorders import _engine as engine_mod
from tests._recorder_helpers import CNN, MLP, RNN, CellRNN, batch_for, names, read, status, train

DOC = (Path(__file__).resolve().parents[1] / "docs" / "trace-format.md").read_text()


@pytest.fixture(params=["host", "device"])
def path_kind(request, monkeypatch):
    """Run a test through the CPU fast path and through the accelerator (torch) path."""
    monkeypatch.setattr(engine_mod, "DEVICE_PATH_ON_CPU", request.param == "device")
    return request.param


def test_import_is_torch_free():
    code = "import sys, recorders, recorders.schema; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_every_dataset_is_documented_and_labelled(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with TraceRecorder(tmp_path / "run.h5", model, opt, nn.CrossEntropyLoss()) as rec:
        train(model, opt, rec, 3)
        rec.log("val_loss", 1.0)
    seen = []
    with h5py.File(tmp_path / "run.h5") as f:
        assert f.attrs[schema.ATTR_FORMAT] == schema.FORMAT_NAME
        assert f.attrs[schema.ATTR_VERSION] == schema.FORMAT_VERSION
        assert status(f)["closed_cleanly"] == 1 and status(f)["steps_written"] == 3
        for key in schema.META_KEYS:
            json.loads(f[schema.META].attrs[key])

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                seen.append(name)
                if obj.maxshape[0] is None:
                    assert obj.dims[0].label == "step", name

        f.visititems(visit)
    for name in seen:
        leaf = re.sub(r"^p\d+$", "p{i}", re.sub(r"^m\d+$", "m{j}", name.split("/")[-1]))
        assert f"`{leaf}`" in DOC or f"/{leaf}`" in DOC, f"{name} is not in docs/trace-format.md"
    groups = {n.split("/")[0] for n in seen}
    assert groups == {"steps", "params", "modules", "outputs", "targets", "inputs", "scalars",
                      "snapshots", "hist", "units", "status", "summary"}  # fmt: skip


def test_statistics_match_the_tensors(tmp_path, path_kind):
    torch.manual_seed(1)
    model = MLP(p=0.0)
    with torch.no_grad():
        model.net[0].bias[:3] = -50.0  # three dead ReLU units
        model.net[3].weight.mul_(8.0)  # saturate the Tanh
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    acts = {}
    handles = [
        m.register_forward_hook(lambda m, i, o, n=n: acts.__setitem__(n, o.detach().clone()))
        for n, m in model.net.named_children()
    ]
    gen = torch.Generator().manual_seed(0)
    crit = nn.CrossEntropyLoss()
    expected = []
    rec = TraceRecorder(tmp_path / "run.h5", model, opt, crit)
    for _ in range(3):
        opt.zero_grad()
        x, y = batch_for(model, 20, gen)
        out = model(x)
        loss = crit(out, y)
        loss.backward()
        rec.step(loss, outputs=out, targets=y, inputs=x)
        w = [p.detach().clone() for p in model.parameters()]
        g = [p.grad.clone() for p in model.parameters()]
        expected.append((w, g, dict(acts), out.detach().clone(), y.clone(), x.clone()))
        opt.step()
    rec.close()
    for h in handles:
        h.remove()
    d = read(tmp_path / "run.h5")
    for row, (w, g, a, out, y, x) in enumerate(expected):
        close = dict(rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(d["params/w_norm"][row], [t.norm() for t in w], **close)
        np.testing.assert_allclose(d["params/w_mean"][row], [t.mean() for t in w], **close)
        np.testing.assert_allclose(d["params/w_std"][row], [t.std(unbiased=False) for t in w], rtol=1e-3)
        np.testing.assert_allclose(d["params/w_maxabs"][row], [t.abs().max() for t in w], **close)
        np.testing.assert_allclose(d["params/g_norm"][row], [t.norm() for t in g], **close)
        np.testing.assert_allclose(d["params/g_maxabs"][row], [t.abs().max() for t in g], **close)
        zero = [(t == 0).float().mean() for t in g]
        np.testing.assert_allclose(d["params/g_zero_frac"][row], zero, **close)
        assert (d["params/w_nonfinite"][row] == 0).all() and (d["params/g_nonfinite"][row] == 0).all()
        order = ["0", "1", "2", "3", "4", "5"]
        acts_l = [a[k] for k in order]
        np.testing.assert_allclose(d["modules/a_mean"][row], [t.mean() for t in acts_l], **close)
        np.testing.assert_allclose(
            d["modules/a_std"][row], [t.std(unbiased=False) for t in acts_l], rtol=1e-3, atol=1e-5
        )
        np.testing.assert_allclose(d["modules/a_maxabs"][row], [t.abs().max() for t in acts_l], **close)
        zf = [(t == 0).float().mean() for t in acts_l]
        np.testing.assert_allclose(d["modules/a_zero_frac"][row], zf, **close)
        dead = [(t == 0).all(dim=0).float().mean() for t in acts_l]
        np.testing.assert_allclose(d["modules/a_dead_frac"][row], dead, **close)
        assert d["modules/a_dead_frac"][row][1] == pytest.approx(3 / 24)
        sat = d["modules/a_sat_frac"][row]
        assert np.isnan(sat[[0, 1, 2, 3, 5]]).all()
        assert sat[4] == pytest.approx(float((a["4"].abs() >= 0.98).float().mean()), abs=1e-6)
        assert sat[4] > 0.1
        np.testing.assert_allclose(d["outputs/col_mean"][row], out.mean(0), **close)
        np.testing.assert_allclose(d["outputs/col_std"][row], out.std(0, unbiased=False), rtol=1e-3)
        hist = torch.bincount(out.argmax(1), minlength=4)
        np.testing.assert_array_equal(d["outputs/argmax_hist"][row], hist)
        mp = torch.softmax(out, 1).max(1).values.mean()
        assert d["outputs/softmax_maxprob"][row] == pytest.approx(float(mp), rel=1e-5)
        np.testing.assert_allclose(d["outputs/sample"][row], out[:16], **close)
        np.testing.assert_array_equal(d["targets/class_hist"][row], torch.bincount(y, minlength=4))
        np.testing.assert_allclose(d["targets/sample"][row][:, 0], y[:16].float())
        np.testing.assert_allclose(d["inputs/feat_mean"][row], x.mean(0), **close)
        np.testing.assert_allclose(d["inputs/sample"][row], x[:16], **close)
        assert d["inputs/maxabs"][row] == pytest.approx(float(x.abs().max()), rel=1e-6)
        assert d["steps/loss"][row] == pytest.approx(float(crit(out, y)), rel=1e-6)
    assert d["attrs:targets"]["kind"] == "index"
    np.testing.assert_array_equal(d["attrs:inputs"]["feature_index"], np.arange(12))


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.01),
}
CASES = [
    ("mlp", "sgd", "before"), ("mlp", "momentum", "after"), ("mlp", "adam", "before"),
    ("mlp", "adamw", "after"), ("mlp", "rmsprop", "before"), ("mlp", "adagrad", "after"),
    ("cnn", "adam", "after"), ("cnn", "momentum", "before"), ("lstm", "momentum", "before"),
    ("gru", "rmsprop", "after"), ("cell", "adamw", "before"),
]  # fmt: skip
MODELS = {"mlp": MLP, "cnn": CNN, "lstm": lambda: RNN("lstm"), "gru": lambda: RNN("gru"),
          "cell": CellRNN}  # fmt: skip


@pytest.mark.parametrize(("model_name", "opt_name", "order"), CASES)
def test_models_optimizers_and_call_orders(tmp_path, model_name, opt_name, order):
    torch.manual_seed(0)
    model = MODELS[model_name]()
    opt = OPTIMIZERS[opt_name](model.parameters())
    steps = 6
    with TraceRecorder(tmp_path / "r.h5", model, opt, nn.CrossEntropyLoss(), update_every=2) as rec:
        losses = train(model, opt, rec, steps, order=order)
    d = read(tmp_path / "r.h5")
    np.testing.assert_array_equal(d["steps/step"], np.arange(steps))
    np.testing.assert_allclose(d["steps/loss"], losses, rtol=1e-6)
    assert np.all(np.diff(d["steps/time"]) > 0)
    assert np.isfinite(d["params/g_norm"]).all() and (d["params/g_norm"] > 0).all()
    upd = d["params/update_ratio"]
    assert np.isnan(upd[1::2]).all()
    measured = upd[0::2]
    if model_name == "cnn":  # zero-initialised BatchNorm bias: inf; conv bias before BN: 0
        zero_init = names(d["params/names"]).index("features.1.bias")
        assert np.isinf(measured[0, zero_init])
        measured = np.delete(measured, zero_init, axis=1)
        assert (measured >= 0).all()
    else:
        assert (measured > 0).all(), measured
    assert np.isfinite(measured).all() and (measured < 1.5).all(), measured
    assert (np.median(measured, axis=1) > 1e-5).all()
    lr = opt.param_groups[0]["lr"]
    np.testing.assert_allclose(d["steps/lr"], np.full((steps, 1), lr))
    ran = np.isfinite(d["modules/a_mean"]).all(axis=0)
    mods = names(d["modules/names"])
    assert ran.sum() >= len(mods) - 1, dict(zip(mods, ran))
    assert np.nanmax(np.abs(d["steps/grad_carry"])) < 1e-5
    if model_name == "cnn":
        types = names(d["modules/types"])
        # units: channels for Conv/BN/pool outputs and for the ReLU fed by them, else last dim
        widths = {types[int(k[1:])] + k: v.shape[1] for k, v in _alive(d).items()}
        assert widths == {"Conv2dm0": 4, "BatchNorm2dm1": 4, "ReLUm2": 4, "MaxPool2dm3": 4,
                          "Conv2dm4": 6, "ReLUm5": 6, "AdaptiveAvgPool2dm6": 6, "Flattenm7": 24,
                          "Linearm8": 3}  # fmt: skip


def _alive(d):
    return {k.split("/")[-1]: v for k, v in d.items() if k.startswith("units/alive/")}


@pytest.mark.parametrize("order", ["before", "after", "no-optimizer"])
def test_update_ratio_is_exact_for_plain_sgd(tmp_path, order, path_kind):
    torch.manual_seed(0)
    model = MLP()
    lr = 0.05
    opt = None if order == "no-optimizer" else torch.optim.SGD(model.parameters(), lr=lr)
    rec = TraceRecorder(tmp_path / "r.h5", model, opt, update_every=1)
    train(model, opt, rec, 5, order="before" if opt is None else order, lr=lr)
    rec.close()
    d = read(tmp_path / "r.h5")
    upd, g, w = d["params/update_ratio"], d["params/g_norm"], d["params/w_norm"]
    if order == "before":  # row i: w and g before the step it measures
        np.testing.assert_allclose(upd, lr * g / w, rtol=2e-3)
    elif order == "after":  # row i: w after the step; its w_before is row i-1's
        np.testing.assert_allclose(upd[1:], lr * g[1:] / w[:-1], rtol=2e-3)
        assert np.isfinite(upd[0]).all()
    else:  # between consecutive rec.step calls: the step after row i-1
        assert np.isnan(upd[0]).all()
        np.testing.assert_allclose(upd[1:], lr * g[:-1] / w[:-1], rtol=2e-3)


@pytest.mark.parametrize("mode", ["set_to_none", "zeros", "accumulation", "missing"])
def test_grad_carry(tmp_path, mode, path_kind):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    zero = {"set_to_none": True, "zeros": "zeros", "accumulation": True, "missing": False}[mode]
    with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
        train(model, opt, rec, 6, zero_grad=zero, accum=3 if mode == "accumulation" else 1)
    carry = read(tmp_path / "r.h5")["steps/grad_carry"]
    if mode == "missing":
        assert np.isnan(carry[0]) or carry[0] < 1e-5
        assert (carry[2:] > 0.3).all(), carry
    else:
        assert np.abs(carry).max() < 1e-5, carry


def test_grad_clipping_is_not_a_carry(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
        gen = torch.Generator().manual_seed(0)
        for _ in range(4):
            opt.zero_grad()
            x, y = batch_for(model, 16, gen)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
            rec.step(loss)
            opt.step()
    assert np.abs(read(tmp_path / "r.h5")["steps/grad_carry"]).max() < 1e-5


def test_every_and_update_every(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.Adam(model.parameters())
    rec = TraceRecorder(
        tmp_path / "r.h5", model, opt, every=3, update_every=2, hist_every=6, snapshot_every=4
    )
    losses = train(model, opt, rec, 14)
    rec.close()
    d = read(tmp_path / "r.h5")
    np.testing.assert_array_equal(d["steps/step"], [0, 3, 6, 9, 12])
    np.testing.assert_allclose(d["steps/loss"], np.array(losses)[[0, 3, 6, 9, 12]], rtol=1e-6)
    upd = d["params/update_ratio"]
    assert np.isfinite(upd[[0, 2, 4]]).all() and np.isnan(upd[[1, 3]]).all()
    np.testing.assert_array_equal(d["hist/step"], [0, 6, 12])
    np.testing.assert_array_equal(d["snapshots/step"], [0, 4, 8, 12, 13])
    np.testing.assert_array_equal(d["snapshots/reason"], [1, 0, 0, 0, 2])
    np.testing.assert_array_equal(d["units/step"], [3, 9, 12])
    assert json.loads(d["attrs:meta"]["options"])["every"] == 3


def test_nan_run_keeps_values_and_snapshots_them(tmp_path, path_kind):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def poison(i, x):
        if i == 5:
            x = x.clone()
            x[0, 0] = float("inf")
        return x

    with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
        losses = train(model, opt, rec, 9, inputs_hook=poison)
    d = read(tmp_path / "r.h5")
    assert np.isfinite(losses[:5]).all() and np.isnan(losses[5])
    loss = d["steps/loss"]
    assert np.isfinite(loss[:5]).all() and np.isnan(loss[5:]).all()
    assert d["params/g_nonfinite"][5].sum() > 0
    assert d["params/w_nonfinite"][6].sum() > 0 and d["params/w_nonfinite"][:6].sum() == 0
    assert d["inputs/nonfinite"][5] == 1 and d["inputs/nonfinite"][4] == 0
    reasons = dict(zip(d["snapshots/reason"].tolist(), d["snapshots/step"].tolist()))
    assert reasons[3] == 5 and list(d["snapshots/reason"]).count(3) == 1
    snap = list(d["snapshots/reason"]).index(3)
    assert np.isnan(d["snapshots/grad/p0"][snap]).any()
    assert d["status"]["closed_cleanly"] == 1


def test_context_manager_closes_on_exception(tmp_path):
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(ValueError, match="boom"):
        with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
            train(model, opt, rec, 3)
            raise ValueError("boom")
    d = read(tmp_path / "r.h5")
    assert d["status"]["closed_cleanly"] == 1 and d["status"]["steps_written"] == 3
    assert not rec.recording
    rec.close()  # idempotent
    rec.step(torch.tensor(1.0))  # a no-op after close


def test_scalars(tmp_path):
    model = MLP()
    rec = TraceRecorder(tmp_path / "r.h5", model)
    rec.log("early", 1.5)
    train(model, None, rec, 3)
    rec.log("val_loss", torch.tensor(0.25))
    rec.log("acc", 0.5)
    rec.log("val_loss", 0.125)
    rec.close()
    d = read(tmp_path / "r.h5")
    assert names(d["scalars/names"])[:3] == ["early", "val_loss", "acc"]
    assert set(names(d["scalars/names"])[3:]) == {""}
    np.testing.assert_array_equal(d["scalars/step"], [0, 2, 2, 2])
    np.testing.assert_array_equal(d["scalars/name_id"], [0, 1, 2, 1])
    np.testing.assert_allclose(d["scalars/value"], [1.5, 0.25, 0.5, 0.125])
    assert np.isnan(d["steps/lr"]).all()


def test_scalar_names_beyond_capacity_warn_once(tmp_path):
    from recorders import TrainwreckWarning

    rec = TraceRecorder(tmp_path / "sub" / "dir" / "r.h5", MLP())  # missing dirs are created
    with pytest.warns(TrainwreckWarning, match="at most 64") as caught:
        for i in range(70):
            rec.log(f"s{i}", float(i))
    assert len(caught) == 1
    rec.close()
    d = read(tmp_path / "sub" / "dir" / "r.h5")
    assert names(d["scalars/names"])[-1] == "s63" and len(d["scalars/value"]) == 64


def test_snapshots_are_strided_copies(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 400), nn.ReLU(), nn.Linear(400, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w0 = model[0].weight.detach().clone()
    b0 = model[0].bias.detach().clone()
    with TraceRecorder(tmp_path / "r.h5", model, opt, snapshot_max_elems=10_000) as rec:
        x, y = torch.randn(4, 300), torch.randint(0, 2, (4,))
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        rec.step(loss)
        opt.step()
    d = read(tmp_path / "r.h5")
    attrs = d["attrs:snapshots/weight/p0"]
    stride = json.loads(attrs["stride"])
    assert json.loads(attrs["full_shape"]) == [400, 300]
    snap = d["snapshots/weight/p0"]
    assert snap.shape[1] * snap.shape[2] <= 10_000 and snap.shape[0] == 2
    np.testing.assert_array_equal(snap[0], w0[:: stride[0], :: stride[1]].numpy())
    last = model[0].weight.detach()[:: stride[0], :: stride[1]].numpy()
    np.testing.assert_array_equal(snap[1], last)  # reason 2: weights at close
    np.testing.assert_array_equal(d["snapshots/weight/p1"][0], b0.numpy())
    assert json.loads(d["attrs:snapshots/weight/p1"]["stride"]) == [1]


def test_histograms_and_liveness(tmp_path, path_kind):
    torch.manual_seed(0)
    model = MLP()
    with torch.no_grad():
        model.net[0].bias[:2] = -100.0
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with TraceRecorder(tmp_path / "r.h5", model, opt, hist_every=3) as rec:
        train(model, opt, rec, 7)
    d = read(tmp_path / "r.h5")
    np.testing.assert_array_equal(d["hist/step"], [0, 3, 6])
    numel = d["params/numel"]
    np.testing.assert_array_equal(d["hist/weight"].sum(axis=2), np.broadcast_to(numel, (3, 6)))
    np.testing.assert_array_equal(d["hist/grad"].sum(axis=2), np.broadcast_to(numel, (3, 6)))
    rng = d["hist/weight_range"]
    assert (rng[:, :, 0] <= rng[:, :, 1]).all()
    act = d["hist/act"]
    assert act.shape == (3, 6, 64) and (act.sum(axis=2) > 0).all()
    np.testing.assert_array_equal(d["units/step"], [2, 5, 6])
    alive = d["units/alive/m1"]  # the ReLU
    assert alive.shape == (3, 24)
    assert (alive[:, :2] == 0).all() and alive[:, 2:].sum() > 0


def test_metadata(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(8, 3))
    model[3].bias.requires_grad_(False)
    opt = torch.optim.AdamW(
        [{"params": [model[0].weight], "lr": 1e-3}, {"params": [model[0].bias], "lr": 1e-2}],
        betas=(0.8, 0.9),
    )
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]), label_smoothing=0.1)
    rec = TraceRecorder(tmp_path / "r.h5", model, opt, loss_fn)
    loss = loss_fn(model(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    rec.step(loss)
    rec.close()
    d = read(tmp_path / "r.h5")
    meta = {k: json.loads(v) for k, v in d["attrs:meta"].items()}
    mods = {m["name"]: m for m in meta["model"]["modules"]}
    assert mods["1"]["args"]["negative_slope"] == 0.2 and mods["2"]["args"]["p"] == 0.3
    assert mods["0"]["args"]["in_features"] == 4 and mods["0"]["params"] == ["0.weight", "0.bias"]
    assert "in_features=4" in mods["0"]["extra_repr"]
    assert meta["model"]["n_params"] == 4 * 8 + 8 + 8 * 3 + 3
    groups = meta["optimizer"]["param_groups"]
    assert meta["optimizer"]["class"] == "AdamW" and groups[1]["lr"] == 1e-2
    assert groups[0]["betas"] == [0.8, 0.9] and groups[0]["params"] == ["0.weight"]
    assert meta["loss"] == {
        "class": "CrossEntropyLoss",
        "args": meta["loss"]["args"],
    } and meta["loss"]["args"]["weight"] == [1.0, 2.0, 3.0]
    assert meta["loss"]["args"]["label_smoothing"] == 0.1
    assert meta["loss"]["args"]["ignore_index"] == -100 and meta["loss"]["args"]["pos_weight"] is None
    env = meta["env"]
    assert env["device"] == "cpu" and env["dtype"] == "torch.float32" and env["world_size"] == 1
    assert meta["options"]["update_every"] == 1 and meta["options"]["swmr"] is True
    np.testing.assert_array_equal(d["params/in_optimizer"], [True, True, False, False])
    np.testing.assert_array_equal(d["params/requires_grad"], [True, True, True, False])
    assert names(d["params/module"]) == ["0", "0", "3", "3"]
    assert json.loads(d["attrs:params"]["shapes"]) == [[8, 4], [8], [3, 8], [3]]
    assert np.isnan(d["params/g_norm"][0, 3]) and d["params/g_nonfinite"][0, 3] == 0


def test_batch_shapes(tmp_path):
    model = nn.Linear(100, 7)
    rec = TraceRecorder(tmp_path / "r.h5", model, max_columns=5, max_features=10, sample_rows=4)
    x = torch.randn(3, 2, 100)
    out = model(x)  # (3, 2, 7): rows fold to 6
    target = torch.randn(3, 2, 7)
    loss = nn.functional.mse_loss(out, target)
    loss.backward()
    rec.step(loss, outputs=out, targets=target, inputs=x)
    rec.step(loss, outputs=out)  # targets/inputs missing on this row
    rec.close()
    d = read(tmp_path / "r.h5")
    assert d["outputs/sample"].shape == (2, 4, 5)
    np.testing.assert_allclose(d["outputs/sample"][0], out.detach().reshape(6, 7)[:4, :5], rtol=1e-6)
    assert d["attrs:outputs"]["columns"] == 7 and json.loads(d["attrs:outputs"]["shape"]) == [3, 2, 7]
    assert d["attrs:targets"]["kind"] == "dense" and d["targets/class_hist"].dtype == np.float32
    np.testing.assert_allclose(d["targets/class_hist"][0], target.reshape(6, 7)[:, :5].sum(0), rtol=1e-5)
    idx = d["attrs:inputs"]["feature_index"]
    np.testing.assert_array_equal(idx, np.arange(10) * 199 // 9)  # both ends kept
    assert idx[0] == 0 and idx[-1] == 199
    np.testing.assert_allclose(
        d["inputs/feat_mean"][0], x.reshape(3, 200)[:, idx].mean(0), rtol=1e-5, atol=1e-6
    )
    assert np.isnan(d["inputs/sample"][1]).all() and np.isnan(d["targets/mean"][1])
    assert np.isfinite(d["outputs/min"]).all()


def test_no_steps_and_no_batch_arguments(tmp_path):
    model = MLP()
    TraceRecorder(tmp_path / "empty.h5", model).close()
    d = read(tmp_path / "empty.h5")
    assert d["steps/step"].shape == (0,) and d["status"]["closed_cleanly"] == 1
    assert not any(k.startswith("outputs") for k in d)


def test_model_copy_and_pickle_still_work(tmp_path):
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
        train(model, opt, rec, 2)
        ema = copy.deepcopy(model)
        opt2 = copy.deepcopy(opt)
        buf = io.BytesIO()
        torch.save(model, buf)
        train(ema, opt2, None, 2)  # a copy's forwards are not recorded
        with torch.no_grad():
            model(torch.randn(3, 12))  # neither are no-grad forwards
        train(model, opt, rec, 1)
    d = read(tmp_path / "r.h5")
    assert d["steps/step"].tolist() == [0, 1, 2]


def test_wrapped_models_use_inner_names(tmp_path):
    model = MLP()
    wrapped = nn.DataParallel(model)
    rec = TraceRecorder(tmp_path / "r.h5", wrapped)
    train(wrapped, None, rec, 1)
    rec.close()
    assert names(read(tmp_path / "r.h5")["params/names"])[0] == "net.0.weight"


def test_swmr_reader_sees_rows_while_writing(tmp_path):
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = TraceRecorder(tmp_path / "r.h5", model, opt, flush_secs=0.1)
    train(model, opt, rec, 4)
    deadline = 50
    rows = 0
    while rows < 4 and deadline:
        with h5py.File(tmp_path / "r.h5", "r", libver="latest", swmr=True) as f:
            rows = int(status(f)["steps_written"])
            assert f["steps/loss"].shape[0] >= rows and status(f)["closed_cleanly"] == 0
        deadline -= 1
        time.sleep(0.05)
    assert rows == 3  # the 4th row waits for its optimizer step's update ratio
    rec.close()


def test_options_are_validated(tmp_path):
    model = MLP()
    with pytest.raises(TypeError, match="unknown TraceRecorder option"):
        TraceRecorder(tmp_path / "r.h5", model, evry=2)
    with pytest.raises(ValueError, match="every"):
        TraceRecorder(tmp_path / "r.h5", model, every=0)


def _tensor_cases():
    gen = torch.Generator().manual_seed(3)
    relu = torch.relu(torch.randn(6, 5, 4, 4, generator=gen))
    relu[:, 1] = 0  # a dead channel
    weird = torch.randn(40, 7, generator=gen)
    weird[3, 2] = float("nan")
    weird[5, 1] = float("inf")
    weird[::3] = 0.0
    return {
        "conv_relu": (relu, 1, None, True),
        "linear": (torch.randn(33, 9, generator=gen), -1, None, False),
        "tanh": (torch.tanh(3 * torch.randn(8, 10, generator=gen)), -1, (-1.0, 1.0), False),
        "nonfinite": (weird, -1, None, False),
        "transposed": (torch.randn(9, 12, generator=gen).t(), -1, None, False),
        "half": (torch.randn(10, 6, generator=gen).half(), -1, None, False),
        "vector": (torch.randn(17, generator=gen), None, None, False),
        "empty": (torch.zeros(0, 4), -1, None, False),
    }


@pytest.mark.parametrize("case", list(_tensor_cases()))
def test_host_and_device_statistics_agree(case):
    from recorders import _host, _stats

    x, unit, bounds, nonneg = _tensor_cases()[case]
    with np.errstate(all="ignore"):
        h_raw, h_alive = _host.act_call_raw(x, unit, bounds, nonneg)
    d_raw, d_alive = _stats.act_call_raw(x, unit, bounds, nonneg)
    np.testing.assert_allclose(h_raw, d_raw.numpy(), rtol=1e-5, equal_nan=True)
    if h_alive is None:
        assert d_alive is None
    else:
        np.testing.assert_array_equal(h_alive, d_alive.numpy())
    ws = [x, torch.randn(3, 3)]
    gs = [x * 2, None]
    with np.errstate(all="ignore"):
        h = _host.param_raw(ws, gs)
    np.testing.assert_allclose(h, _stats.param_raw(ws, gs).numpy(), rtol=1e-5, equal_nan=True)


def test_parameterless_model_and_empty_batches(tmp_path):
    model = nn.ReLU()
    rec = TraceRecorder(tmp_path / "r.h5", model)
    x = torch.randn(4, 3, requires_grad=True)
    out = model(x)
    loss = out.sum()
    loss.backward()
    rec.step(loss, outputs=out, targets=torch.zeros(4, 0), inputs=x[:0])
    rec.close()
    d = read(tmp_path / "r.h5")
    assert d["params/w_norm"].shape == (1, 0) and d["targets/sample"].shape == (1, 16, 0)
    assert d["modules/a_mean"][0, 0] == pytest.approx(float(out.detach().mean()))
    assert np.isnan(d["inputs/mean"]).all()
