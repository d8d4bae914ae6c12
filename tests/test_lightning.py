"""The Lightning callback with the real Lightning: what it records, and the three-bug acceptance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.trace import open_trace
from tests import _three_bugs as B

pl = pytest.importorskip("lightning.pytorch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
from recorders.lightning import TrainwreckCallback  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self, bug: str | None = None, manual: bool = False, two_opts: bool = False) -> None:
        super().__init__()
        self.model = B.model_for(bug)
        self.loss_fn = nn.CrossEntropyLoss()
        self.lr = B.lr_for(bug)
        self.automatic_optimization = not manual
        self.two_opts = two_opts

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        if self.automatic_optimization:
            return loss
        opts = self.optimizers() if isinstance(self.optimizers(), list) else [self.optimizers()]
        for opt in opts:
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in opts:
            opt.step()
        return None

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y))

    def configure_optimizers(self):
        params = list(self.parameters())  # a frozen layer stays in the optimizer, as users write it
        if self.two_opts:
            head = list(self.model.net[4].parameters())
            body = [p for p in params if all(p is not q for q in head)]
            return [torch.optim.SGD(body, lr=self.lr, momentum=0.9), torch.optim.SGD(head, lr=self.lr)]
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9)


def _fit(path, module, steps=B.STEPS, val=False, **trainer_kw):
    train = torch.utils.data.DataLoader(B.batches(steps), batch_size=None)
    vals = torch.utils.data.DataLoader(B.batches(4, seed=7), batch_size=None) if val else None
    trainer = pl.Trainer(max_epochs=1, callbacks=[TrainwreckCallback(path)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=trainer_kw.pop("devices", 1), num_sanity_val_steps=0,
                         limit_val_batches=4 if val else 0, **trainer_kw)
    trainer.fit(module, train, vals)
    return str(path)


@pytest.mark.parametrize("bug", sorted(B.BUGS))
def test_three_bugs_get_the_same_top_cause_as_the_raw_loop(tmp_path, bug):
    raw = B.top_cause(B.raw_loop(str(tmp_path / "raw.h5"), bug))
    lit = B.top_cause(_fit(tmp_path / "lit.h5", Module(bug)))
    assert raw == lit == B.BUGS[bug]


def test_healthy_fit_is_clean_and_records_at_the_optimizer_step(tmp_path):
    path = _fit(tmp_path / "ok.h5", Module(), steps=60, val=True, val_check_interval=20)
    assert B.worst(path) == []
    with open_trace(path) as tr:
        assert tr.n_steps == 60 and tr.has("outputs") and tr.has("targets") and tr.has("inputs")
        assert np.isfinite(tr.param_stat("update_ratio")[0]).all()  # measured around optimizer.step
        assert np.nanmax(np.abs(tr.grad_carry())) < 1e-3  # zeroed each step, as Lightning does
        steps, v = tr.scalar("val_loss")
        assert list(steps) == [19, 39, 59] and np.isfinite(v).all()
    # The same batches through the raw loop give the same first losses: the callback only observes.
    raw = B.raw_loop(str(tmp_path / "raw.h5"), None)
    with open_trace(path) as a, open_trace(raw) as b:
        np.testing.assert_allclose(a.loss()[:20], b.loss()[:20], rtol=1e-5)
        np.testing.assert_allclose(a.param_stat("g_norm")[:20], b.param_stat("g_norm")[:20], rtol=1e-4)


def test_gradient_accumulation_one_row_per_optimizer_step_with_the_mean_loss(tmp_path):
    path = _fit(tmp_path / "acc.h5", Module(), steps=40, accumulate_grad_batches=4)
    losses = []
    module = Module()
    for x, y in B.batches(4):
        with torch.no_grad():
            losses.append(float(module.loss_fn(module(x), y)))
    with open_trace(path) as tr:
        assert tr.n_steps == 10
        assert tr.loss()[0] == pytest.approx(np.mean(losses), rel=1e-5)  # not divided by 4


def test_gradients_are_taken_before_clipping(tmp_path):
    path = _fit(tmp_path / "clip.h5", Module("lr_too_high"), steps=20, gradient_clip_val=1e-3)
    with open_trace(path) as tr:
        g = tr.param_stat("g_norm")
        assert np.sqrt(np.nansum(g[0] ** 2)) > 1e-2  # the clipped total would be 1e-3


def test_manual_optimisation_and_two_optimizers(tmp_path):
    path = _fit(tmp_path / "manual.h5", Module(manual=True, two_opts=True), steps=30)
    with open_trace(path) as tr:
        assert tr.n_steps == 30
        assert np.isfinite(tr.loss()).all() and np.isfinite(tr.param_stat("g_norm")).all()
        assert tr.meta["optimizer"]["class"] == "SGD"


def test_ddp_writes_one_file_per_rank(tmp_path):
    _fit(tmp_path / "ddp.h5", Module(), steps=16, strategy="ddp_spawn", devices=2)
    assert sorted(p.name for p in tmp_path.glob("ddp*.h5")) == ["ddp.rank0.h5", "ddp.rank1.h5"]
    with open_trace(tmp_path / "ddp.h5") as tr:
        assert tr.n_ranks == 2 and tr.n_steps == 8  # each rank takes half of the 16 batches
        np.testing.assert_array_equal(tr.param_stat("w_norm"), tr.rank(1).param_stat("w_norm"))
        assert not np.array_equal(tr.loss(), tr.rank(1).loss())


def test_amp_scaler_of_a_16_mixed_fit_is_logged(tmp_path):
    from lightning.pytorch.plugins import MixedPrecision

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=256.0))
    path = _fit(tmp_path / "amp.h5", Module(), steps=12, plugins=[plugin])
    with open_trace(path) as tr:
        steps, scale = tr.scalar("amp_scale")
        assert list(steps) == list(range(12)) and scale[0] == 256.0
        assert tr.scalar("amp_skipped")[1].sum() == 0
        assert np.isfinite(tr.param_stat("g_norm")).all()
        g = tr.param_stat("g_norm")[0]
    raw = B.raw_loop(str(tmp_path / "raw.h5"), None)
    with open_trace(raw) as one:  # unscaled: the fp32 loop's gradients, not 256 times them
        np.testing.assert_allclose(g, one.param_stat("g_norm")[0], rtol=0.05)
