"""Seed 000, example 3: zero weights and one output bias set to 50 — class 3 wins for every input.

What is wrong: ``nn.init.zeros_(weight)``, ``nn.init.zeros_(bias)`` then
``bias.data[3] = 50`` on a 10→5 linear classifier. Logit 3 exceeds the others by ~50
for every row, so softmax puts probability ≈ 1 on class 3 whatever the input. Adam at
1e-3 (as in the article) moves that bias by ~1e-3 per step, so it would take ~50 000
steps to undo: the model predicts class 3 for 100 % of rows, accuracy stays at that
class's share (~18 %), and the loss sits at ~35–40 (≈ 50 for every row not of class 3).
Reproduces /work/shared/seeds/000_*.txt, "Example 3: Poorly initialized bias values",
on 5 Gaussian classes in 10 dimensions.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples.seed000_large_init_onehot import SimpleModel

EXPECTED: str | None = "dominant_bias"
SYMPTOMS: tuple[str, ...] = ("constant_prediction", "softmax_saturation", "loss_plateau")
SEED: str | None = "000"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("blobs")
    model = SimpleModel()
    nn.init.zeros_(model.linear.weight)
    nn.init.zeros_(model.linear.bias)
    model.linear.bias.data[3] = 50  # BUG: one class's bias dwarfs everything else
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        record_after_step=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
