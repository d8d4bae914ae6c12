"""Healthy: a small CNN (two 3×3 convolutions, max-pool) on scikit-learn digits (8×8 images).

Nothing is wrong: standardised pixels, default (Kaiming) init, Adam at 1e-3, logits into
``CrossEntropyLoss``. Loss falls from ~2.3 to below 0.1 and validation accuracy reaches
~97 %. ``val_loss`` is logged every epoch; ``rec.step`` is called before ``opt.step()``.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = None
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train the CNN for ``steps`` steps (default 1200, quick 180), recording to ``out``."""
    steps = steps or (180 if quick else 1200)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    images = C.Data(data.x.view(-1, 1, 8, 8), data.y, data.x_val.view(-1, 1, 8, 8), data.y_val)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), images, steps, seed=seed, batch_size=64,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
