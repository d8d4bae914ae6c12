"""The model is rebuilt after the optimiser was created — the optimiser steps a model nobody uses.

What is wrong: ``opt = SGD(model.parameters())`` is created, then ``model =
build_model()`` runs again (the config is reloaded for "the final settings"). The
optimiser still holds the *first* model's parameters: backward fills the new model's
gradients, ``opt.step()`` updates tensors that are no longer in the model, and not one
of the trained model's weights ever changes. The loss stays flat at its initial ~2.3
for the whole run, with gradients that look perfectly healthy. (The loop clears
gradients with ``model.zero_grad()``; with ``opt.zero_grad()`` it would clear the
old model's instead and the new one's would also pile up.)
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from recorders import TraceRecorder

EXPECTED: str | None = "frozen_weights"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = None


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model = build_model()  # BUG: a new model; the optimiser still holds the old one's parameters
    loss_fn = nn.CrossEntropyLoss()
    loader = C.make_loader(data.x, data.y, batch_size=64, seed=seed)
    loss = torch.tensor(0.0)
    with TraceRecorder(out, model, optimizer=opt, loss_fn=loss_fn) as rec:
        for _, _, x, y in C.batches(loader, steps):
            model.zero_grad()
            pred = model(x)
            loss = loss_fn(pred, y)
            loss.backward()
            rec.step(loss=loss, outputs=pred, targets=y, inputs=x)
            opt.step()
    C.report(float(loss.detach()), model, *data.val, task="multiclass")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
