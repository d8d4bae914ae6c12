"""A hand-written binary cross-entropy, ``log(sigmoid(z))``, turns NaN once the model is confident.

What is wrong: the loss is written out as ``-(y·log(sigmoid(z)) + (1-y)·log(1-sigmoid(z)))``.
In float32 ``sigmoid(z)`` rounds to exactly 1.0 once ``z`` exceeds ~17, so for a confident
positive row ``(1-y)·log(1-sigmoid(z)) = 0·(-inf) = NaN``. An MLP on breast_cancer (Adam
7e-4, batches of 32) trains well for ~890 steps (loss → 0.005), then the loss is NaN
and every weight with it. ``F.binary_cross_entropy_with_logits(z, y)`` computes the same
loss stably and trains on.
"""

from __future__ import annotations

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples import _long as L

EXPECTED: str | None = "unstable_loss"
SYMPTOMS: tuple[str, ...] = ("nonfinite", "loss_diverging")
SEED: str | None = None
ONSET: tuple[int, int] = (850, 950)  # the step the loss first turns NaN (893 at seed 0)


def bce_by_hand(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(z[:, 0])
    y = y.float()
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()  # BUG: log(0) once p rounds to 1


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1200; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1200
    torch.manual_seed(seed)
    data = C.dataset("breast_cancer")
    model = L.mlp([30, 32, 32, 1])
    opt = torch.optim.Adam(model.parameters(), lr=7e-4)
    return C.record_fit(out, model, opt, bce_by_hand, data, steps, seed=seed, batch_size=32, train=L.train,
                        task="binary", label="last finite loss")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
