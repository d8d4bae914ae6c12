"""Seed 000, example 1: weights and biases drawn from U(−10, 10) — a one-hot softmax from step 0.

What is wrong: ``nn.init.uniform_(weight, -10, 10)`` (and the bias likewise) on a
10→5 linear classifier. Fan-in scaling would give weights of std ≈ 0.3; these have
std ≈ 5.8, so logits are in the tens from step 0 and the softmax is one-hot for every
row: the loss starts at ~19 and is still ~10–17 after 150–600 steps, and the predicted
probabilities stay one-hot (max-probability ≈ 0.95 for every row, right or wrong).
Reproduces /work/shared/seeds/000_*.txt, "Example 1: Overly large initial weights and
learning rate", on 5 Gaussian classes in 10 dimensions (the article's shapes).

Deviation from the article: its lr = 1 lets SGD on this convex one-layer model shrink the
weights back within ~100 steps (measured: loss 15 → 0.55 by step 600, same as a sane
init), so the failure would only show in the first steps. A plain lr = 0.01 leaves
the large init as the one thing wrong: the loss stays high and the softmax one-hot.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = "large_init"
SYMPTOMS: tuple[str, ...] = ("softmax_saturation", "loss_plateau")
SEED: str | None = "000"


class SimpleModel(nn.Module):
    """The article's one-layer model."""

    def __init__(self, input_size: int = 10, output_size: int = 5) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("blobs")
    model = SimpleModel()
    nn.init.uniform_(model.linear.weight, a=-10, b=10)  # BUG: ~20x the fan-in scale
    nn.init.uniform_(model.linear.bias, a=-10, b=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
