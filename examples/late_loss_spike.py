"""Three batches with targets in the wrong unit make the loss spike on a healthy regression run.

What is wrong: the diabetes targets are standardised, but three shards of the pipeline
(at steps 500, 700 and 850) deliver their targets unscaled — ~100× larger. Each such
batch costs ~10⁴× the usual loss; Adam's bounded step lets the model recover each time,
so the run looks fine at the end, with three tall spikes on the loss curve that
are the data's doing, not the optimiser's.
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
SYMPTOMS: tuple[str, ...] = ("loss_spike",)
SEED: str | None = None
BAD_STEPS = (500, 700, 850)
ONSET: tuple[int, int] = (BAD_STEPS[0], BAD_STEPS[0] + 2)


def unscaled_shards(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if step in BAD_STEPS:  # BUG: these shards skip the target scaling
        y = y * 60.0 + 150.0
    return x, y


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("diabetes", scale_y=True)
    model = nn.Sequential(L.mlp([10, 64, 64, 1]), nn.Flatten(0))  # (B,) predictions for (B,) targets
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.MSELoss(), data, steps, seed=seed, batch_size=32, train=L.train,
                        batch_hook=unscaled_shards, task="regression")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
