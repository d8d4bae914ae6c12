"""Seed 000, example 2 without its remedy: a ReLU RNN trained with no gradient clipping explodes.

What is wrong: nothing but the missing ``clip_grad_norm_`` that seed 000's example 2
adds ("if no clipping were applied, we would encounter the same problem"). A one-layer
ReLU ``nn.RNN`` (hidden 32, default init) learns to sum a 40-step noisy sequence, with
SGD at a moderate lr = 0.02 and momentum 0.9. As training grows the recurrent
weights past spectral radius 1, the hidden state — and the gradient through 40 time
steps — grows geometrically: with seed 0 the recurrent weight's gradient norm goes from
~0.06 to > 1e6 within a few steps around step 200, and the loss becomes Inf/NaN.
Training stops at the first non-finite loss, as many training scripts do. With
``clip_grad_norm_(model.parameters(), 1.0)`` the same run trains to MSE ≈ 0.1.
(Exploding RNNs are chaotic: other seeds blow up at other steps, a few not at all.)
Reproduces /work/shared/seeds/000_*.txt, "Example 2: Learning rate and gradient clipping".
"""

from __future__ import annotations

import math

import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = "exploding_gradients"
SYMPTOMS: tuple[str, ...] = ("loss_diverging", "nonfinite")
SEED: str | None = "000"
# The gradient departs from its earlier level where the recurrent weights pass spectral radius 1,
# well into the run (the run stops at the first non-finite loss): fractions of the recorded steps.
ONSET: tuple[float, float] = (0.25, 1.0)

LENGTH = 40


class SumRNN(nn.Module):
    """ReLU RNN over a sequence of scalars, regress from the last hidden state."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True, nonlinearity="relu")
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x)
        return self.head(h[-1])


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for up to ``steps`` steps (default 500, quick 300), recording to ``out``."""
    steps = steps or (300 if quick else 500)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1000, LENGTH, 1, generator=gen)
    y = x.sum(dim=1) / math.sqrt(LENGTH)  # (N, 1), unit variance
    torch.manual_seed(seed)
    model = SumRNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    loss_fn = nn.MSELoss()
    loader = C.make_loader(x, y, batch_size=32, seed=seed)
    # BUG (by omission): no clip=1.0 here (C.fit would call clip_grad_norm_ after each backward)
    loss = C.record_training(out, model, opt, loss_fn, loader, steps, stop_nonfinite=True)
    C.report(loss, model, x[:200], y[:200], task="regression", validation=False, fmt=".4g")
    return out


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
