"""SGD at learning rate 1e-5 — the updates are negligible and the loss barely moves.

What is wrong: ``SGD(lr=1e-5)``, about 10 000× below what this digits MLP
(64→128→64→10, default init) trains well with. Each step changes the weights by
~1e-6 of their norm, so after the whole run the loss has moved from ~2.31 to ~2.30
and accuracy is near chance. Seed 002 names it: "a learning rate that's too low can
result in extremely slow convergence, effectively stalling the training process"
(seed 001 likewise). The same script at lr 0.1 reaches ~0.05.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "lr_too_low"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "002"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-5)  # BUG: far too small
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
