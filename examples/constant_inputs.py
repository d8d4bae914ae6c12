"""A feature-selection bug multiplies every input by 0 — nothing to learn from.

What is wrong: the preprocessing keeps "the wanted pixel columns" with a boolean mask
built from column names, but the wanted names are spelled differently from the
dataset's (``"pixel_0_0"`` vs ``"pixel_00"``), so the mask is all False and
``x * mask`` is all zeros. Every input row is the same vector; the model (a sane
64→128→10 MLP, Adam 1e-3) can only learn the class prior: it outputs identical logits
for every row, the loss stays at ~2.30 and one class is predicted for 100 % of rows.
Seed 002 names it ("data that lacks sufficient variance … the network might learn to
predict … a single average value").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "constant_inputs"
SYMPTOMS: tuple[str, ...] = ("output_collapse", "constant_prediction", "loss_plateau")
SEED: str | None = "002"


def select_pixels(x: np.ndarray) -> np.ndarray:
    """Keep the wanted pixel columns, zero the rest (meant to drop the empty border)."""
    columns = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]  # the dataset's names
    wanted = {f"pixel_{r}{c}" for r in range(1, 7) for c in range(1, 7)}  # BUG: different spelling
    mask = np.isin(columns, list(wanted))  # all False
    return x * mask


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    x, y = C.raw_dataset("digits")
    x, y, xv, yv = C.split(select_pixels(x), y, seed=seed)
    x, xv = C.standardize(x, xv)
    data = C.to_data(x, y, xv, yv)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
