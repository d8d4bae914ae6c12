"""A sigmoid output layer on regression targets in [0, 100] — every prediction is pinned at 1.

What is wrong: the model ends in ``nn.Sigmoid()`` (copied from a classifier), but the
targets are scores in percent (diabetes progression rescaled to 0–100, mean ~40). The
output can never exceed 1: the sigmoid saturates at its top within a few steps, its
gradient vanishes, and the model predicts ≈ 1.0 for every row. The MSE stays at
~1 500–2 300 — the squared distance from 1 to the targets — for the whole run. A linear
output (or targets scaled to [0, 1]) fixes it.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "bounded_output"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse")
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    x, y = C.raw_dataset("diabetes")
    y = 100 * (y - y.min()) / (y.max() - y.min())  # progression score in percent
    x, y, xv, yv = C.split(x, y, seed=seed)
    x, xv = C.standardize(x, xv)
    data = C.to_data(x, y[:, None], xv, yv[:, None])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1),
                          nn.Sigmoid())  # BUG: output bounded to (0, 1), targets in [0, 100]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.MSELoss(), data, steps, seed=seed, batch_size=32,
                        record_after_step=True, task="regression", fmt=".1f")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
