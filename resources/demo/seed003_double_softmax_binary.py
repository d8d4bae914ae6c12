"""Seed 003: ``nn.Softmax`` inside the model *and* ``nn.CrossEntropyLoss`` — softmax applied twice.

What is wrong: the model ends in ``nn.Softmax(dim=1)``, so it outputs probabilities,
and ``CrossEntropyLoss`` applies its own log-softmax on top. The loss can then only
move between log(1 + e⁻¹) ≈ 0.31 and log(1 + e) ≈ 1.31, its gradients are squashed by
the first softmax, and the loss "hovers at a high, unchanging value": it stays at
~0.35–0.45 where the same model on logits reaches ~0.05, and the model's outputs are
rows of probabilities summing to 1 that ``CrossEntropyLoss`` treats as logits.
As written in the article (``Linear(10, 2)`` + ``Softmax``, Adam 0.01, batches of 10);
the article's labels are random coin flips, which nothing can learn, so here they come
from a fixed linear rule on the inputs (a learnable task).
Reproduces /work/shared/seeds/003_*.txt, the ``IncorrectBinaryClassifier``.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = "double_softmax"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "003"


class IncorrectBinaryClassifier(nn.Module):
    """The article's model: a linear layer followed by a softmax."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(input_dim, 2),
            nn.Softmax(dim=1),  # BUG: CrossEntropyLoss expects logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def linear_rule_data(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal inputs; label 1 where a fixed random direction scores > 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    w = torch.randn(dim, generator=gen)
    return x, (x @ w > 0).long()


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    x, y = linear_rule_data(1000, 10, seed)
    torch.manual_seed(seed)
    model = IncorrectBinaryClassifier(10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    return C.record_fit(out, model, optimizer, criterion, (x, y), steps, seed=seed, batch_size=10,
                        task="multiclass", probs=True)


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
