"""Seed 004, example 3: Adam at learning rate 1.0 on a small ReLU net — the loss jumps, then stalls.

What is wrong: ``Adam(lr=1.0)``. Every step moves each weight by up to ~1: the loss
jumps to ~3–10 within a few steps, about half of the ReLU units are knocked dead on the
way, and the run stalls at ~0.6 with the loss swinging between batches, "the inability
of the network to optimize properly": ~63 % training accuracy, class 1 predicted for
~80 % of rows. The same model at lr 0.01 reaches ~0.45 and ~80 % (the label noise's
ceiling).
As in the article: ``HighLearningNet`` (10→16 ReLU → 1), ``BCEWithLogitsLoss``; labels
from a noisy rule instead of coin flips, and mini-batches of 32 instead of full-batch
steps (full-batch Adam at lr 1 on this tiny net recovers after its first jump: measured).
Reproduces /work/shared/seeds/004_*.txt, the final example ("excessive learning rate").
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples.seed004_label_leakage import noisy_rule_data

EXPECTED: str | None = "lr_too_high"
SYMPTOMS: tuple[str, ...] = ("loss_diverging", "loss_plateau")
SEED: str | None = "004"


class HighLearningNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    x, y = noisy_rule_data(1000, seed)
    torch.manual_seed(seed)
    model = HighLearningNet()
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)  # BUG: very high learning rate
    return C.record_fit(out, model, optimizer, criterion, (x, y), steps, seed=seed, batch_size=32,
                        record_after_step=True, task="binary")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
