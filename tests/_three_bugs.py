"""One small classification task and three classic bugs, trained through any integration.

The same model, data and bugs go through a raw loop (here), Lightning and the Hugging
Face Trainer (their tests); each must get the same top cause.
"""

from __future__ import annotations

import torch
from torch import nn

from recorders import TraceRecorder

BUGS = {"double_softmax": "double_softmax", "lr_too_high": "lr_too_high", "frozen_layer": "frozen_weights"}
STEPS, BATCH, LR, HIGH_LR = 240, 32, 0.05, 5.0


class Net(nn.Module):
    """20 → 32 → 32 → 4 ReLU MLP; ``softmax=True`` is the double-softmax bug."""

    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return torch.softmax(z, -1) if self.softmax else z


def data(n: int = 2048, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four overlapping Gaussian blobs in 20 dimensions."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 20, generator=g) * 0.5
    y = torch.randint(0, 4, (n,), generator=g)
    return centers[y] + torch.randn(n, 20, generator=g), y


def batches(steps: int = STEPS, seed: int = 1):
    """The same ``steps`` random batches ``(x, y)`` for every integration."""
    x, y = data()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(x), (steps, BATCH), generator=g)
    return [(x[i], y[i]) for i in idx]


def model_for(bug: str | None) -> Net:
    """The model with ``bug`` planted (``frozen_layer``: the middle Linear never trains)."""
    torch.manual_seed(0)
    model = Net(softmax=bug == "double_softmax")
    if bug == "frozen_layer":
        for p in model.net[2].parameters():
            p.requires_grad = False
    return model


def lr_for(bug: str | None) -> float:
    return HIGH_LR if bug == "lr_too_high" else LR


def raw_loop(path: str, bug: str | None) -> str:
    """The plain PyTorch loop of the README."""
    model = model_for(bug)
    opt = torch.optim.SGD(model.parameters(), lr=lr_for(bug), momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    with TraceRecorder(path, model, optimizer=opt, loss_fn=loss_fn) as rec:
        for x, y in batches():
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=y, inputs=x)
            opt.step()
    return path


def top_cause(path: str) -> str | None:
    from analysis import analyze

    report = analyze(path)
    return report.findings[0].code if report.findings else None


def worst(path: str) -> list[str]:
    """Codes of findings of severity warning or error (a healthy run has none)."""
    from analysis import analyze

    return [f.code for f in analyze(path).findings if f.severity in ("warning", "error")]
