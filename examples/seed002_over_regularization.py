"""Seed 002, example 2: Keras l2(0.1) on the kernels plus ``Dropout(0.9)`` — the model cannot fit.

What is wrong: regularisation far too strong for this small network. Keras'
``kernel_regularizer=l2(0.1)`` adds 0.1·Σw² of the kernel to the loss that is
optimised and reported — ported literally, as penalty terms added to the cross-entropy.
``Dropout(0.9)`` then zeroes 90 % of the hidden units on every step. The training loss
(cross-entropy + penalty, as Keras reports it) falls from ~9 and plateaus at ~2.1–2.8,
no better than the 2.30 of predicting the class prior (the same model without the
regularisers reaches ~0.05); the kernels shrink to a fraction of their initial norm
and the predicted probabilities stay timid (mean max-probability ~0.2).
Deviation from the article: it regularises the first Dense layer only; on 64-pixel
digits (instead of 784-pixel MNIST) that alone still lets the loss reach ~1.65 after
1000 steps (measured), so both kernels carry the l2(0.1) here.
Ported from Keras: Dense(64, ReLU) → Dropout(0.9) → Dense(10, softmax), Adam
(lr 1e-3), categorical cross-entropy (logits into ``CrossEntropyLoss``); digits.
Reproduces /work/shared/seeds/002_*.txt, "Example 2: Excessive Regularization".
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples.seed001_unnormalized_inputs import keras_dense

EXPECTED: str | None = "over_regularization"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "002"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1000, quick 300), recording to ``out``."""
    steps = steps or (300 if quick else 1000)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    hidden, out_layer = keras_dense(64, 64), keras_dense(64, 10)
    kernels = (hidden.weight, out_layer.weight)
    model = nn.Sequential(hidden, nn.ReLU(), nn.Dropout(0.9), out_layer)  # BUG: drops 90 % of units
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ce = nn.CrossEntropyLoss()

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ce(logits, target) + sum(0.1 * w.pow(2).sum() for w in kernels)  # BUG: l2(0.1) per kernel

    loader = C.make_loader(data.x, data.y, batch_size=32, seed=seed)
    loss = C.record_training(out, model, opt, loss_fn, loader, steps, recorded_loss_fn=ce, val=data.val)
    l2 = sum(0.1 * float(w.detach().pow(2).sum()) for w in kernels)
    C.report(loss, model, *data.val, task="multiclass", note=f" (of which L2 {l2:.3f})")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
