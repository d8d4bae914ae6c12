"""Seed 002, example 1: a deep sigmoid stack under plain SGD — gradients vanish, every row gets one output.

What is wrong: five sigmoid hidden layers (the article's 128-64-32 stack plus two more
32-wide layers) under plain SGD at 0.01 (Keras' ``'sgd'`` default). Each sigmoid layer
multiplies the backward signal by at most 0.25, so the first layer's gradient norm is
~200× smaller than the last layer's, the early layers never learn, and the network
outputs (nearly) the same class probabilities for every input: loss stays at
ln 10 ≈ 2.30 and one class is predicted for ~100 % of rows.
Deviation from the article: its ReLU version of this stack *does* train under SGD
(measured: loss 2.3 → 0.76 in 300 steps), so the port uses the activation that
actually makes gradients vanish. Softmax + categorical cross-entropy is written the
PyTorch way: logits into ``CrossEntropyLoss``. Data: scikit-learn digits (8×8 = 64
inputs instead of MNIST's 784).
Reproduces /work/shared/seeds/002_*.txt, "Example 1: Vanishing Gradients in a Deep Network".
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

EXPECTED: str | None = "vanishing_gradients"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse", "constant_prediction")
SEED: str | None = "002"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    widths = (64, 128, 64, 32, 32, 32)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [keras_dense(n_in, n_out), nn.Sigmoid()]  # BUG: deep saturating stack
    model = nn.Sequential(*layers, keras_dense(widths[-1], 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=32,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
