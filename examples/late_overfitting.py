"""A wide MLP on a small, noisily labelled training set memorises it: validation loss turns and climbs.

What is wrong: the training set is 300 digits, 25 % of them with a wrong label (a sloppy
labelling pass), and the model (64→128→128→10, Adam 1e-3, no regularisation) has far
more capacity than that. The training loss falls steadily to ~0.01 — it learns the
wrong labels too — while the logged ``val_loss`` reaches its minimum within the first
few hundred steps and then rises for the rest of the 1,000 steps. Early stopping at the
validation minimum (or weight decay and dropout) keeps the best model.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples import _long as L

EXPECTED: str | None = "overfitting"
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None
ONSET: tuple[int, int] = (60, 400)  # where val_loss turned (its minimum is near step 150)


def small_noisy_split(seed: int) -> C.Data:
    data = C.dataset("digits", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = data.x[:300], data.y[:300].clone()  # BUG: a tiny training set ...
    flip = torch.rand(len(y), generator=gen) < 0.25  # BUG: ... with 25 % wrong labels
    y[flip] = torch.randint(0, 10, (int(flip.sum()),), generator=gen)
    return C.Data(x, y, data.x_val, data.y_val)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = small_noisy_split(seed)
    model = L.mlp([64, 128, 128, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        log_val=True, train=L.train, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
