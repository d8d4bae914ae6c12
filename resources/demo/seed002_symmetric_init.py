"""Seed 002's thesis, "a failure to adequately break symmetry": every weight initialised to the same constant.

What is wrong: ``nn.init.constant_(weight, 0.05)`` and zero biases on every layer of a
64→64→64→10 ReLU MLP. All hidden units of a layer compute the same function, receive
the same gradient and therefore stay identical forever: the network trains as if each
hidden layer had a single unit. Loss falls only to ~1.8 (the same network with default
init reaches ~0.05) and validation accuracy stays ~20 %, one class taking ~70 % of
rows. (Seed 001 names the same bug: "initializing all weights to zero prevents the
network from breaking symmetry".)
Reproduces /work/shared/seeds/002_*.txt, section 1 (collapsed weight matrix / symmetry).
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = "symmetric_init"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "002"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.05)  # BUG: every unit starts identical
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
