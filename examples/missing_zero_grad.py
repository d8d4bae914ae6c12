"""A training loop without ``optimizer.zero_grad()`` — gradients pile up across steps.

What is wrong: the loop calls ``loss.backward()`` and ``opt.step()`` but never
``opt.zero_grad()``. ``.grad`` is a running sum of every batch's gradient since the
start, so step *t* applies roughly *t* times the intended gradient, pointing at where
the model was long ago. With SGD (lr 0.01, momentum 0.9) on a digits MLP the loss first
falls, then swings ever wider and climbs; the gradient norms grow steadily with the
step count. Adding ``opt.zero_grad()`` at the top of the loop reaches ~0.05.
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

EXPECTED: str | None = "missing_zero_grad"
SYMPTOMS: tuple[str, ...] = ("loss_diverging",)
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    loader = C.make_loader(data.x, data.y, batch_size=64, seed=seed)
    loss = torch.tensor(0.0)
    with TraceRecorder(out, model, optimizer=opt, loss_fn=loss_fn) as rec:
        for _, epoch_end, x, y in C.batches(loader, steps):
            # BUG: no opt.zero_grad() here
            out_ = model(x)
            loss = loss_fn(out_, y)
            loss.backward()
            rec.step(loss=loss, outputs=out_, targets=y, inputs=x)
            opt.step()
            if epoch_end:
                rec.log("val_loss", C.evaluate(model, loss_fn, *data.val))
    C.report(float(loss.detach()), model, *data.val, task="multiclass")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
