"""Seed 004: the label leaks into an input feature — the loss is ~0 within the first epoch.

What is wrong: the data, not the model. A preprocessing step meant to add a "previous
outcome" column copies the current row's label into feature 3 (``x[:, 3] = y``), the
article's "training data set is unintentionally mirrored in the labels". The article's
``SimpleNet`` (10→5 ReLU → 1, ``BCEWithLogitsLoss`` on its logit, Adam 0.01, full-batch
steps) finds that feature at once: the loss falls from ~0.7 to ~0.07 within 150
steps and keeps shrinking (~0.02 by 400), training accuracy is 100 %, and the other
nine features (the real signal, a noisy rule worth ~75 %) are ignored.
Reproduces /work/shared/seeds/004_*.txt ("Why do loss functions consistently return
zero after the first epoch?"), the data-leakage cause, with the article's first model.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from recorders import TraceRecorder
from resources.demo import _common as C

EXPECTED: str | None = "label_leakage"
SYMPTOMS: tuple[str, ...] = ("loss_zero_early",)
SEED: str | None = "004"


class SimpleNet(nn.Module):
    """The article's first model (linear output, for ``BCEWithLogitsLoss``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


def add_previous_outcome(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Meant to add last period's outcome as feature 3; uses this row's label instead."""
    x = x.clone()
    x[:, 3] = y.squeeze(1)  # BUG: the target itself becomes an input
    return x


def noisy_rule_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """10 standard-normal features; label 1 where the first three sum above noise (~75 % learnable)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=gen)
    noisy_rule = x[:, :3].sum(dim=1) + 1.5 * torch.randn(n, generator=gen)
    return x, (noisy_rule > 0).float().unsqueeze(1)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` full-batch steps (default 400, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 400)
    x, y = noisy_rule_data(512, seed)
    x = add_previous_outcome(x, y)
    torch.manual_seed(seed)
    model = SimpleNet()
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    with TraceRecorder(out, model, optimizer=optimizer, loss_fn=criterion) as rec:
        for _ in range(steps):  # the article's loop: one full-batch step per epoch
            optimizer.zero_grad()
            outputs = model(x)
            loss = criterion(outputs, y)
            loss.backward()
            rec.step(loss=loss, outputs=outputs, targets=y, inputs=x)
            optimizer.step()
    C.report(float(loss.detach()), model, x, y, task="binary", validation=False, fmt=".2e")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
