"""Hidden biases initialised to −5 — every ReLU outputs 0 for every input and the net predicts one class.

What is wrong: ``nn.init.constant_(bias, -5.0)`` on the first hidden layer of a
64→128→64→10 ReLU MLP (meant to "encourage sparse activations"). With standardised
inputs and default weights the pre-activations are ~N(−5, 0.6²): all 128 units are 0
for every row, so the layer passes no signal and no gradient, and nothing before it
can ever recover. Only the layers after it learn, from a constant input: the model
outputs the same logits for every row — the class prior — and the loss stays at
~2.30 with one class predicted for 100 % of rows. (Over a long run a few units revive
on rare outlier pixels and the loss creeps to ~1.85, accuracy ~20 %.)
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resources.demo import _common as C

EXPECTED: str | None = "dead_relu"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse", "constant_prediction")
SEED: str | None = None


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    nn.init.constant_(model[0].bias, -5.0)  # BUG: every unit of the first ReLU is dead
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        record_after_step=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
