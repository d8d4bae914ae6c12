"""Seed 003's closing warning, broken: ``nn.Sigmoid`` at the end of the model fed to ``BCEWithLogitsLoss``.

What is wrong: ``BCEWithLogitsLoss`` applies a sigmoid itself and expects raw logits,
but the model already ends in ``nn.Sigmoid()``. Its "logits" are probabilities in
(0, 1), so the loss's own sigmoid only sees values between 0.5 and 0.73: the loss
cannot go below ≈ 0.50 (for a perfect classifier), the gradients are squashed twice,
and training crawls. On breast_cancer (standardised) the loss sits at ~0.5 where a
logit model reaches ~0.05.
Reproduces /work/shared/seeds/003_*.txt, the ``BCEWithLogitsLoss`` section ("Always
ensure that … the final model output is a tensor of logits"), with the mistake made.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "double_softmax"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "003"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 160), recording to ``out``."""
    steps = steps or (160 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("breast_cancer")
    data = C.Data(data.x, data.y.float().unsqueeze(1), data.x_val, data.y_val.float().unsqueeze(1))
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1),
                          nn.Sigmoid())  # BUG: the loss applies the sigmoid again
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.BCEWithLogitsLoss(), data, steps, seed=seed, batch_size=32,
                        log_val=True, task="binary", probs=True)


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
