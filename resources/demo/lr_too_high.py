"""Plain SGD at learning rate 1.0 on a regression MLP — the loss diverges to Inf within ~10 steps.

What is wrong: ``SGD(lr=1.0)``. For this 10→64→64→1 ReLU regressor on standardised
diabetes data a comfortable SGD step is ~0.01–0.1; at 1.0 every step overshoots and
the loss multiplies: ~1 → 16 → 150 → 1e8 → Inf by step ~9, the weights going
non-finite with it. Training stops at the first non-finite loss, as many scripts do.
The same script at lr 0.01 reaches MSE ≈ 0.45. (Between ~0.5 and 0.9 this net
survives by killing ReLUs instead: also bad, but less clear-cut.)
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = "lr_too_high"
SYMPTOMS: tuple[str, ...] = ("loss_diverging", "nonfinite")
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for up to ``steps`` steps (default 300, quick 100), recording to ``out``."""
    steps = steps or (100 if quick else 300)
    torch.manual_seed(seed)
    data = C.dataset("diabetes", scale_y=True)
    y = data.y.unsqueeze(1)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)  # BUG: ~10-100x too high
    loss_fn = nn.MSELoss()
    loader = C.make_loader(data.x, y, batch_size=32, seed=seed)
    loss = C.record_training(out, model, opt, loss_fn, loader, steps, stop_nonfinite=True)
    print(f"final loss {loss:.4g}")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
