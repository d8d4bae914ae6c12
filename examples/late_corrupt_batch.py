"""One corrupt batch at step 900 of a healthy 1,200-step run blows an MLP up.

What is wrong: the data pipeline hands over one batch holding a corrupt record (garbage
bytes decoded as floats: features of magnitude ~10⁴ against ~1 for the rest). Until
then a 4-layer ReLU MLP on digits (SGD 0.05 + momentum, no gradient clipping) trains
well (loss → ~0.05); that batch's gradient is ~10⁴× the usual, the step it takes wrecks
the weights and the loss is NaN within a step or two. Validating the data on load (or
clipping gradients) keeps the run healthy.
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

EXPECTED: str | None = "data_outlier"
SYMPTOMS: tuple[str, ...] = ("nonfinite", "loss_diverging")
SEED: str | None = None
BAD_STEP = 900
ONSET: tuple[int, int] = (BAD_STEP, BAD_STEP + 2)


def corrupt(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if step == BAD_STEP:  # BUG: one record in the wrong unit reaches the model unchecked
        x = x.clone()
        x[3] = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(3)) * 1e4
    return x, y


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1200; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1200
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        batch_hook=corrupt, train=L.train, task="multiclass", label="last finite loss")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
