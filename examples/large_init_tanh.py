"""Weights multiplied by 10 after init in a tanh MLP — every hidden unit saturated from step 0.

What is wrong: a "stronger signal" tweak, ``weight.data *= 10`` on every layer after
PyTorch's default (fan-in scaled) init. Pre-activations of the 64→128→64 tanh layers
then have std ~6 instead of ~0.6: ~80 % of the tanh outputs sit within 1 % of ±1 from
the first step, their derivatives are ~0, and the output logits are large, so the
softmax is one-hot: the loss starts at ~7. Adam at 1e-3 cannot pull weights this
large back; the output layer slowly memorises the saturated (nearly binary, random)
hidden code: validation accuracy ~70–80 % and validation loss ~1.3, where the default
init reaches ~97 % and ~0.1.
"""

from __future__ import annotations

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "large_init"
SYMPTOMS: tuple[str, ...] = ("softmax_saturation", "loss_plateau")
SEED: str | None = "000"


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 800, quick 200), recording to ``out``."""
    steps = steps or (200 if quick else 800)
    torch.manual_seed(seed)
    data = C.dataset("digits")
    model = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight *= 10  # BUG: 10x the fan-in scale
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), data, steps, seed=seed, batch_size=64,
                        log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
