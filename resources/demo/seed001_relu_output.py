"""Seed 001, example 2: a ReLU on the output layer of a regressor whose targets are mostly negative.

What is wrong: ``Dense(1, activation='relu')`` as the output layer. ReLU cannot output
anything below 0, and two thirds of the targets (``sin(2π·x0) − 0.5``) are negative.
Adam pulls the output's pre-activation below 0 to chase the negative targets, and once
it is negative for every row the ReLU passes no gradient: within ~20 steps the model
predicts exactly 0 for 100 % of rows — the article's "constant zero prediction" — and
the loss stays at mean(y²) ≈ 0.75. (On some seeds the unit survives and fits only the
positive third, predicting 0 for the rest.) A linear output layer fits all rows.
Reproduces /work/shared/seeds/001_*.txt, "Example 2: Output Layer Activation Issues"
(Dense(32, ReLU) → Dense(1, ReLU), Adam 0.01, MSE; Keras default init).
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C
from resources.demo.seed001_unnormalized_inputs import article_data, keras_dense

EXPECTED: str | None = "bounded_output"
SYMPTOMS: tuple[str, ...] = ("loss_plateau",)
SEED: str | None = "001"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    x, y = article_data(640, seed)
    y = y - 0.5  # two thirds of the targets are now below 0
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    torch.manual_seed(seed)
    model = nn.Sequential(keras_dense(2, 32), nn.ReLU(),
                          keras_dense(32, 1), nn.ReLU())  # BUG: ReLU output layer
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.MSELoss(), (x, y), steps, seed=seed, batch_size=32,
                        record_after_step=True, task="regression")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
