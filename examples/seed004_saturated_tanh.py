"""Seed 004, example 2: a tanh stack whose units sit pinned at ±1 — learning stalls.

What is wrong: the hidden layers' biases are initialised to 3 (a "positive bias" trick
copied from a gate recipe, applied to every layer) in the article's ``ProblematicNet``
(10→128→128→1 with ``tanh``). Pre-activations are ≈ 3 ± 0.6, so nearly every tanh unit
outputs > 0.99, its derivative 1 − tanh² is ~0.005, and the hidden layers barely pass
any gradient or any information about the input: the hidden code is almost the same
vector for every row, and the loss stays near 0.69 (chance for balanced classes) while
the same net with zero biases reaches ~0.05. Everything else is sane (standardised
inputs, fan-in weight scale, Adam 0.01, logits into ``BCEWithLogitsLoss``).
Reproduces /work/shared/seeds/004_*.txt, the ``ProblematicNet`` ("tanh activation
functions … can saturate relatively quickly"), with a learnable label rule.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C
from examples.seed003_double_softmax_binary import linear_rule_data

EXPECTED: str | None = "saturated_activations"
SYMPTOMS: tuple[str, ...] = ("loss_plateau", "output_collapse")
SEED: str | None = "004"


class ProblematicNet(nn.Module):
    """The article's model, with the tanh layers as modules."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 128)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(128, 128)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Linear(128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 600, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 600)
    x, y = linear_rule_data(1000, 10, seed)
    y = y.float().unsqueeze(1)
    torch.manual_seed(seed)
    model = ProblematicNet()
    for layer in (model.fc1, model.fc2):
        nn.init.constant_(layer.bias, 3.0)  # BUG: every tanh unit starts pinned near +1
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return C.record_fit(out, model, optimizer, criterion, (x, y), steps, seed=seed, batch_size=50,
                        task="binary")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
