"""Healthy: sane regularisation — dropout 0.2 and weight decay 1e-4 — on scikit-learn wine.

Nothing is wrong: standardised features, a 13→64→32→3 MLP with ``Dropout(0.2)`` after
each hidden ReLU, Adam at 3e-3 with ``weight_decay=1e-4``. Loss falls from ~1.1 to ~0.05
and validation accuracy reaches ~97 %. Regularisation this mild must not be reported.
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
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 160), recording to ``out``."""
    steps = steps or (160 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("wine")
    model = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=16,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
