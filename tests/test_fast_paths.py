"""The recorder's batched CPU paths (issue 9) give the statistics of the per-tensor ones:
parameters reduced together (``_host.param_raw``) and leaf outputs of one shape copied to a
shared buffer and reduced at once (``ActivationCapture`` groups)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recorders import TraceRecorder, _hooks, _host, _stats
from tests._recorder_helpers import read


class Twins(nn.Module):
    """Repeated shapes (dense and convolutional), bounded and non-negative activations, a
    module called twice per step, a dead unit and a dead channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1),
                                  nn.ReLU(), nn.Flatten())
        self.dense = nn.Sequential(nn.Linear(24, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                                   nn.Linear(16, 16), nn.Sigmoid())
        self.shared = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)
        with torch.no_grad():
            self.dense[2].bias[3] = -50.0  # unit 3 of the ReLU after it is dead
            self.conv[2].bias[1] = -50.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.shared(self.shared(self.dense(self.conv(x)))))


def _record(tmp_path, name: str) -> tuple[dict, int]:
    torch.manual_seed(0)
    model = Twins()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    with TraceRecorder(tmp_path / f"{name}.h5", model, opt, budget=1.0) as rec:
        for _ in range(6):
            x, y = torch.randn(8, 2, 4, 2, generator=gen), torch.randint(0, 3, (8,), generator=gen)
            opt.zero_grad()
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
            loss.backward()
            rec.step(loss, outputs=out, targets=y, inputs=x)
            opt.step()
        groups = len(rec._engine.acts._groups)
    return read(tmp_path / f"{name}.h5"), groups


def test_grouped_activation_statistics_equal_the_per_call_ones(tmp_path, monkeypatch):
    grouped, n_groups = _record(tmp_path, "grouped")
    monkeypatch.setattr(_hooks, "BUFFER_ELEMS", 0)
    single, none = _record(tmp_path, "single")
    assert n_groups == 2 and none == 0  # the feature maps, the 16-unit outputs
    for key in grouped:
        if key.startswith(("modules/", "units/", "hist/act")) and grouped[key].dtype.kind in "fiub":
            np.testing.assert_allclose(grouped[key], single[key], rtol=1e-4, atol=1e-7, equal_nan=True,
                                       err_msg=key)
    dead = grouped["modules/a_dead_frac"][1:]
    assert (dead > 0).any() and np.isfinite(grouped["modules/a_sat_frac"][1:]).any()


@pytest.mark.parametrize("kind", ["finite", "nonfinite", "sparse_grad", "empty"])
def test_parameter_statistics_reduced_together_equal_the_per_tensor_ones(kind):
    gen = torch.Generator().manual_seed(0)
    ws = [torch.randn(5, 4, generator=gen), torch.randn(7, generator=gen),
          torch.randn(300, 300, generator=gen), torch.randn(5, 4, generator=gen).double()]
    gs = [torch.randn_like(w) for w in ws]
    gs[1][::2] = 0.0
    if kind == "nonfinite":
        ws[0][1, 1] = float("nan")
        gs[3][0, 0] = float("inf")
    if kind == "sparse_grad":
        gs[2] = None
    if kind == "empty":
        ws.append(torch.zeros(0, 3))
        gs.append(torch.zeros(0, 3))
    with np.errstate(all="ignore"):
        host = _host.param_raw(ws, gs)
    np.testing.assert_allclose(host, _stats.param_raw(ws, gs).numpy(), rtol=1e-5, equal_nan=True)


def _record_batches(path: str) -> list[int]:
    """A run whose batches go to the writer by reference; the bytes held back after every step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    held = []
    with TraceRecorder(path, model, optimizer=opt, loss_fn=nn.CrossEntropyLoss()) as rec:
        for _ in range(150):
            x, y = torch.randn(32, 8, generator=gen), torch.randint(0, 3, (32,), generator=gen)
            opt.zero_grad()
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=y, inputs=x)
            opt.step()
            b = rec._engine.batch
            held.append(b._ref_sent - b._ref_done)
    return held


def test_batches_held_for_the_writer_are_bounded_and_recorded_alike(tmp_path, monkeypatch):
    from recorders import _batch

    free_held = _record_batches(str(tmp_path / "free.h5"))
    free = read(str(tmp_path / "free.h5"))
    cap = 3 * 32 * 8 * 4  # less than one step's outputs, targets and inputs (1,664 bytes)
    assert max(free_held) > cap  # uncapped, several steps' batches wait for the writer
    monkeypatch.setattr(_batch, "REF_BYTES", cap)
    held = _record_batches(str(tmp_path / "capped.h5"))
    capped = read(str(tmp_path / "capped.h5"))
    assert max(held) <= cap
    for key in [k for k in free if k.startswith(("inputs/", "outputs/", "targets/"))]:
        np.testing.assert_array_equal(free[key], capped[key], err_msg=key)
    assert any(k.startswith("inputs/") for k in free)
