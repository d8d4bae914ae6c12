"""``MSELoss`` on outputs of shape (B, 1) against targets of shape (B,) — the loss broadcasts to (B, B).

What is wrong: the targets were never reshaped. ``MSELoss()(out, y)`` with ``out``
``(B, 1)`` and ``y`` ``(B,)`` broadcasts to a ``(B, B)`` matrix that compares every
prediction with *every* target in the batch (PyTorch only warns). The minimum of that
loss is at predicting the batch mean for every row, so the regressor (10→64→32→1 on
standardised diabetes) learns the mean: the loss stays at ~1.0 (the targets' variance),
predictions have almost no spread and R² ≈ 0, where ``y.unsqueeze(1)`` gives ~0.45 / 0.5.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "broadcast_loss"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse")
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("diabetes", scale_y=True)  # data.y has shape (N,)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = C.make_loader(data.x, data.y, batch_size=32, seed=seed)  # BUG: targets (B,), outputs (B, 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using a target size")  # the warning users skim past
        loss = C.record_training(out, model, opt, nn.MSELoss(), loader, steps, val=data.val)
    C.report(loss, model, data.x_val, data.y_val.unsqueeze(1), task="regression")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
