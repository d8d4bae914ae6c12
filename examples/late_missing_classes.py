"""From step 600 a "cleaned" dataset whose filter drops classes 7–9 replaces the training data.

What is wrong: half-way through, the script swaps in a re-exported training set whose
cleaning filter keeps only ``y < 7`` (a threshold meant for another column). The model
still has 10 outputs and trained well on all ten digits for 600 steps; from then on it
never sees a 7, 8 or 9, forgets them, and stops predicting them: validation accuracy
drops by ~30 points while the training loss looks better than ever.
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

EXPECTED: str | None = "missing_classes"
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None
SWITCH = 600
ONSET: tuple[int, int] = (SWITCH, SWITCH + 50)  # the first cleaned epoch (it starts at an epoch boundary)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    full = C.make_loader(data.x, data.y, batch_size=32, seed=seed)
    keep = data.y < 7  # BUG: the cleaning filter drops classes 7, 8 and 9
    cleaned = C.make_loader(data.x[keep], data.y[keep], batch_size=32, seed=seed)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed,
                        loader=L.switch(full, cleaned, at=SWITCH), train=L.train, log_val=True,
                        task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
