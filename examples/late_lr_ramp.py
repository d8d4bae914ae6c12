"""A hand-written learning-rate schedule that ramps 400× after step 700 blows up a healthy run.

What is wrong: the schedule was meant to decay after the warm phase, but its exponent has
the wrong sign: from step 700 the learning rate grows geometrically, 400× by step 1,200.
A 3-layer ReLU MLP on digits (SGD 0.01 + momentum) trains well to ~0.02 until then; once
the learning rate passes what the loss can bear the loss jumps, ReLUs die, and the
gradients end at exactly 0 or NaN. ``0.01 * 400 ** (-(step - 700) / 500)`` (the intended
decay) trains on.
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

EXPECTED: str | None = "lr_too_high"
SYMPTOMS: tuple[str, ...] = ("loss_diverging", "nonfinite")
SEED: str | None = None
RAMP_FROM = 700
ONSET: tuple[int, int] = (RAMP_FROM, 1050)  # from the ramp's start to where the loss gave way


def schedule(step: int) -> float:
    if step < RAMP_FROM:
        return 0.01
    return 0.01 * 400 ** ((step - RAMP_FROM) / 500)  # BUG: exponent sign: grows instead of decaying


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1200; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1200
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        lr_hook=schedule, train=L.train, task="multiclass", label="last finite loss")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
