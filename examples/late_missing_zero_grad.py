"""From step 600 a rewritten loop stops calling ``zero_grad``: gradients pile up, the run diverges.

What is wrong: the second phase of the script ("fine-tune with a new loop") was copied
without ``opt.zero_grad()``. For 600 steps a digits MLP (SGD 0.01 + momentum) trains
well; from then on each ``.grad`` is the running sum of every later batch's gradient, the
effective step grows with the step count, and the loss swings and climbs.
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

EXPECTED: str | None = "missing_zero_grad"
SYMPTOMS: tuple[str, ...] = ("loss_diverging",)
SEED: str | None = None
SWITCH = 600
ONSET: tuple[int, int] = (SWITCH, SWITCH + 30)


def zero_grad(step: int) -> bool:
    return step < SWITCH  # BUG: the phase-two loop has no opt.zero_grad()


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        zero_grad=zero_grad, train=L.train, task="multiclass", label="last finite loss")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
