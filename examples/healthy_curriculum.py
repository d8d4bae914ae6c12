"""Healthy: a curriculum — the easiest half of the digits for 400 steps, then all of them.

Nothing is wrong. The first phase trains on the half of each class closest to its class
mean (clean, typical digits); at step ~400 the loader switches to the full training set.
The loss jumps up at the switch (harder, atypical digits arrive, the input statistics
widen) and then falls again to ~0.02; validation accuracy ~97 %. The jump is the plan,
not a corrupt batch or a divergence.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples import _long as L

EXPECTED: str | None = None
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None
SWITCH = 400


def easy_half(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Indices of the half of each class closest to its class mean."""
    keep = []
    for c in y.unique():
        idx = torch.nonzero(y == c).reshape(-1)
        dist = (x[idx] - x[idx].mean(0)).norm(dim=1)
        keep.append(idx[torch.argsort(dist)[: len(idx) // 2]])
    return torch.cat(keep)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    easy = easy_half(data.x, data.y)
    first = C.make_loader(data.x[easy], data.y[easy], batch_size=32, seed=seed)
    full = C.make_loader(data.x, data.y, batch_size=32, seed=seed)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed,
                        loader=L.switch(first, full, at=SWITCH), train=L.train, log_val=True,
                        task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
