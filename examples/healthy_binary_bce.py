"""Healthy: seeds 003/004 done right — one logit per row into ``BCEWithLogitsLoss``, on breast_cancer.

The articles' corrected binary classifier: a 30→16→1 ReLU MLP whose last layer is
linear (no sigmoid in the model), float targets shaped ``(B, 1)`` like the output,
Adam at 0.01. Loss falls from ~0.7 to ~0.05; validation accuracy ~97 %. Trained on past
~300 steps (20 epochs of 455 rows) it starts to overfit: the validation loss turns at about
step 290 and is ~60 % above its minimum by step 600, which trainwreck reports as
``overfitting`` (``--steps 600`` shows it).
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = None
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = "004"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 300, quick 160), recording to ``out``."""
    steps = steps or (160 if quick else 300)
    torch.manual_seed(seed)
    data = C.dataset("breast_cancer")
    data = C.Data(data.x, data.y.float().unsqueeze(1), data.x_val, data.y_val.float().unsqueeze(1))
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.BCEWithLogitsLoss(), data, steps, seed=seed, batch_size=32,
                        record_after_step=True, log_val=True, task="binary")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
