"""After 500 shuffled steps the fine-tuning phase reads the data sorted by label, unshuffled.

What is wrong: for the second phase the script builds a new loader over the training set
sorted by class ("so that the per-class report is easy to read") and forgets
``shuffle=True``. Every batch then holds one or two classes; the model chases each class
in turn and forgets the others: the loss saws with the order of the data and the
validation accuracy collapses although the first 500 steps had reached ~97 %.
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

EXPECTED: str | None = "unshuffled_data"
SYMPTOMS: tuple[str, ...] = ("loss_spike",)
SEED: str | None = None
SWITCH = 500
ONSET: tuple[int, int] = (SWITCH, SWITCH + 50)  # the first sorted epoch (it starts at an epoch boundary)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000; quick the same: the failure is late), recording to ``out``."""
    steps = steps or 1000
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = L.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffled = C.make_loader(data.x, data.y, batch_size=32, seed=seed)
    order = torch.argsort(data.y, stable=True)
    by_class = C.make_loader(data.x[order], data.y[order], batch_size=32, shuffle=False)  # BUG: no shuffle
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed,
                        loader=L.switch(shuffled, by_class, at=SWITCH), train=L.train, log_val=True,
                        task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
