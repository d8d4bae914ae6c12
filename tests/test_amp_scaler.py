"""The GradScaler passed as ``scaler=``: its scale and the steps it skipped become scalars."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from analysis.trace import open_trace
from recorders import TraceRecorder


def test_scaler_scale_and_skipped_steps_are_logged(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1000)
    path = tmp_path / "amp.h5"
    with TraceRecorder(path, model, optimizer=opt, scaler=scaler) as rec:
        for step in range(8):
            x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            if step == 4:  # an overflowing gradient: the scaler skips this step and backs off
                model[0].weight.grad[0, 0] = float("inf")
            scaler.unscale_(opt)
            rec.step(loss=loss)
            scaler.step(opt)
            scaler.update()
    with open_trace(path) as tr:
        steps, scale = tr.scalar("amp_scale")
        _, skipped = tr.scalar("amp_skipped")
    assert list(steps) == list(range(8))
    assert scale[0] == 1024.0 and scale[5] == 512.0
    assert np.flatnonzero(skipped).tolist() == [5]  # the drop is seen at the next row
