"""Healthy: SGD with momentum under a linear warm-up then cosine decay, an MLP on digits.

Nothing is wrong. The learning rate rises from 0.002 to 0.1 over the first 10 % of
steps and decays to 0 by the last: tiny updates at both ends are the schedule, not a
learning rate that is too low. Loss falls from ~2.3 to ~0.02; accuracy ~97 %.
"""

from __future__ import annotations

import math

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


def warmup_cosine(total: int, warmup_frac: float = 0.1):
    """``LambdaLR`` factor: linear warm-up from 1/50 to 1, then cosine down to 0."""
    warm = max(1, int(total * warmup_frac))

    def factor(step: int) -> float:
        if step < warm:
            return 0.02 + 0.98 * step / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return factor


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000, quick 220), recording to ``out``."""
    steps = steps or (220 if quick else 1000)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps))
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        scheduler=sched, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
