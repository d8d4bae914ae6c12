"""A freezing loop that freezes everything — only the head's bias is left trainable.

What is wrong: a fine-tuning script meant to freeze the "backbone" and train the
classification head. It sets ``requires_grad = False`` on *every* parameter, then
re-enables only ``model.head.bias`` (meant: ``model.head.parameters()``). The optimiser
is built over the trainable parameters, so 10 numbers out of ~13 000 ever change:
the model can only learn the class prior, the loss stays at ~2.2 and validation
accuracy near chance, while every weight matrix stays exactly at its initial value.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "frozen_weights"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = None


class Classifier(nn.Module):
    """A small "backbone" MLP and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = Classifier()
    for p in model.parameters():
        p.requires_grad = False  # freeze the backbone...
    model.head.bias.requires_grad = True  # BUG: ...but unfreezes only the head's bias
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
