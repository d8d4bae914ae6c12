"""A deep MLP on plain SGD stopped at a fixed step count while its loss was still falling fast.

What is wrong: nothing in the model; the run is just too short for its optimiser. A
6-layer tanh MLP on digits with plain SGD (lr 0.02, no momentum) falls slowly and
steadily: after 1,000 steps the loss is still dropping by ~25 % per quarter of the run,
with no sign of levelling off, and the validation accuracy is far below what the same
model reaches with more steps. Training longer (or with momentum) is the fix.
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

EXPECTED: str | None = "undertrained"
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None
STEPS = 1000
ONSET: tuple[int, int] = (0, 0)  # the run was too short from the start


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same), recording to ``out``."""
    steps = steps or STEPS  # BUG: a fixed step budget, not a stopping criterion
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 64, 64, 64, 10], act=nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        train=L.train, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
