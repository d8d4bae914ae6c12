"""Seed 001, example 3: a label-cleaning bug turns every target into 0 — the model learns to predict 0.

What is wrong: the targets. The raw targets are fractions in [0, 1); the cleaning step
``y = y_raw.astype(np.int64)`` truncates every one of them to 0 (the article's "bug in
a data cleaning script might replace all correct target values with zeros"). The
model (Dense(32, ReLU) → Dense(1), Adam 0.01, MSE) is fine and does exactly what it is
told: within the first epoch it predicts ≈ 0 for every input and the loss drops
below 1e-5 and stays there.
Reproduces /work/shared/seeds/001_*.txt, "Example 3: Data Input Issues and Zero-valued Labels".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C
from resources.demo.seed001_unnormalized_inputs import article_data, keras_dense

EXPECTED: str | None = "constant_targets"
SYMPTOMS: tuple[str, ...] = ("loss_zero_early", "output_collapse", "constant_prediction")
SEED: str | None = "001"


def clean_targets(y_raw: np.ndarray) -> np.ndarray:
    """Meant to drop NaNs and fix the dtype; the integer cast truncates [0, 1) to 0."""
    y = np.nan_to_num(y_raw)
    return y.astype(np.int64).astype(np.float32)  # BUG: every target becomes 0


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 600)
    x, _ = article_data(640, seed)
    y_raw = np.random.default_rng(seed + 1).random((len(x), 1))  # the article's y = rand(100, 1)
    y = clean_targets(y_raw)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    torch.manual_seed(seed)
    model = nn.Sequential(keras_dense(2, 32), nn.ReLU(), keras_dense(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.MSELoss(), (x, y), steps, seed=seed, batch_size=32,
                        task="regression", fmt=".2e")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
