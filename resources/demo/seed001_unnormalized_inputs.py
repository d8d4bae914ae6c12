"""Seed 001, example 1: one input feature in [0, 1], the other ×1000 — the model predicts a near-constant.

What is wrong: no input normalisation. ``X = rand(N, 2); X[:, 1] *= 1000`` as in the
article, into a Dense(32, ReLU) → Dense(1) regressor (Glorot-uniform init, zero biases:
Keras defaults), Adam at 0.01, MSE, batches of 32. The target depends on the small
feature A only (``sin(2π·A)`` plus noise; the article's targets are pure noise, which
nothing could learn). Feature B's scale makes the first steps' outputs huge (loss
~1e4), Adam's early steps kill about half of the ReLUs, and the model settles on a
near-constant ≈ 0: the loss stays at ~0.25–0.5 (the targets' variance is 0.5; R²
0.2–0.3), predictions have std ~0.1–0.2 against the targets' 0.7. Standardising both
features (the article's fix) reaches loss ≈ 0.014 with the same everything else.
Reproduces /work/shared/seeds/001_*.txt, "Example 1: Issue with Unnormalized Data".
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

EXPECTED: str | None = "unnormalized_inputs"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse")
SEED: str | None = "001"


def keras_dense(n_in: int, n_out: int) -> nn.Linear:
    """``tf.keras.layers.Dense`` defaults: Glorot-uniform kernel, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def article_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two features uniform in [0, 1]; target ``sin(2π·x0)`` + noise, shape ``(n, 1)``."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    y = np.sin(2 * np.pi * x[:, 0]) + 0.1 * rng.standard_normal(n)
    return x, y[:, None]


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    x, y = article_data(640, seed)
    x[:, 1] *= 1000  # BUG: feature B is ~1000x feature A, and nothing rescales it
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    torch.manual_seed(seed)
    model = nn.Sequential(keras_dense(2, 32), nn.ReLU(), keras_dense(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, opt, nn.MSELoss(), (x, y), steps, seed=seed, batch_size=32,
                        task="regression")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
