"""97 % / 3 % labels and a plain loss — the classifier predicts the majority class for every row.

What is wrong: the data. In this synthetic "fraud" set (``make_classification`` with
``weights=[0.97, 0.03]``, a weak signal) the positive class is 3 % of rows, and
``CrossEntropyLoss`` is used with no class weights, no resampling. Predicting "not
fraud" for everyone already gives 97 % accuracy and a low loss (~0.13), so that is what
the model learns: class 0 for ~100 % of rows, recall on the minority class ≈ 0.
Seed 000 names it ("if one class is vastly overrepresented, the model might learn to
favor this class exclusively"), as does seed 002.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "class_imbalance"
SYMPTOMS: tuple[str, ...] = ("constant_prediction",)
SEED: str | None = "000"


def fraud_data(seed: int) -> C.Data:
    """3 000 rows, 20 features, 3 % positives with a weak signal; standardised, split 80/20."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=3000, n_features=20, n_informative=4, n_redundant=2,
                               weights=[0.97, 0.03], class_sep=0.5, flip_y=0.0, random_state=seed)
    x, y, xv, yv = C.split(x, y, seed=seed)
    x, xv = C.standardize(x, xv)
    return C.to_data(x, y, xv, yv)


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    data = fraud_data(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()  # BUG: no class weights for a 97/3 split
    loader = C.make_loader(data.x, data.y, batch_size=64, seed=seed)
    loss = C.record_training(out, model, opt, loss_fn, loader, steps, val=data.val)
    with torch.no_grad():
        pred = model(data.x_val).argmax(dim=1)
    recall = float((pred[data.y_val == 1] == 1).float().mean())
    summary = C.describe(model, data.x_val, data.y_val, task="multiclass")
    print(f"final loss {loss:.4f}; validation {summary}, minority recall {recall:.0%}")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
