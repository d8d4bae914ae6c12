"""Seed 002, example 3: Adam with learning rate 1.0 — the weights jump around and the softmax goes one-hot.

What is wrong: ``Adam(learning_rate=1.0)``, a thousand times Adam's usual 1e-3. Each
step moves every weight by up to ~1, so the logits reach the hundreds within a few
steps: the training loss jumps from ~2 to ~100–300 (batch mean) and swings there for
the whole run — most batches are fit with huge margins (loss 0), a few wrong rows cost
hundreds each — and the softmax is one-hot for every row (max-probability 1.000),
whether right or wrong, so ``val_loss`` is in the tens while the argmax is still
mostly right.
Ported from Keras: Dense(64, ReLU) → Dense(10, softmax), categorical cross-entropy
(logits into ``CrossEntropyLoss``); scikit-learn digits instead of MNIST.
Reproduces /work/shared/seeds/002_*.txt, "Example 3: Learning Rate Too High".
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

EXPECTED: str | None = "lr_too_high"
SYMPTOMS: tuple[str, ...] = ("softmax_saturation", "loss_diverging")
SEED: str | None = "002"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(keras_dense(64, 64), nn.ReLU(), keras_dense(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1.0)  # BUG: extremely high learning rate
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        log_val=True, record_after_step=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
