"""Healthy: a planned learning-rate drop (×0.1 at step 700) on a wine MLP, 1,000 steps.

Nothing is wrong. ``MultiStepLR(milestones=[700], gamma=0.1)`` cuts Adam's learning
rate from 3e-3 to 3e-4 as planned: the update ratio drops 10× at once and the loss,
already low, settles a little lower and quieter. Neither the tiny late updates nor the
flat tail is a learning rate that is too low or a plateau.
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

EXPECTED: str | None = None
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("wine")
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[700], gamma=0.1)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=16,
                        log_val=True, scheduler=sched, train=L.train, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
