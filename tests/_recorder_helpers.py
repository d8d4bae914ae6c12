"""Small models, a training loop and trace readers shared by the recorder tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from recorders import TraceRecorder


class MLP(nn.Module):
    def __init__(self, d_in: int = 12, hidden: int = 24, d_out: int = 4, p: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(p), nn.Linear(hidden, hidden),
            nn.Tanh(), nn.Linear(hidden, d_out),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(24, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class RNN(nn.Module):
    def __init__(self, cell: str = "lstm") -> None:
        super().__init__()
        cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = cls(5, 8, batch_first=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


class CellRNN(nn.Module):
    """An LSTMCell unrolled by hand: one leaf module called many times per step."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(5, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = x.new_zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.out(h)


def batch_for(model: nn.Module, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs fitting ``model`` and class-index targets."""
    if isinstance(model, CNN):
        return torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    if isinstance(model, (RNN, CellRNN)):
        return torch.randn(n, 6, 5, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return torch.randn(n, 12, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def train(
    model: nn.Module,
    opt: torch.optim.Optimizer | None,
    rec: TraceRecorder | None,
    steps: int,
    *,
    order: str = "before",
    zero_grad: bool | str = True,
    accum: int = 1,
    batch: int = 16,
    lr: float = 0.05,
    seed: int = 0,
    on_step: Callable[[int], Any] | None = None,
    inputs_hook: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> list[float]:
    """The contract loop; returns the losses. ``opt=None`` does a manual SGD step.

    ``order`` "before"/"after": rec.step before or after optimizer.step.
    ``zero_grad`` True (set_to_none), "zeros" (set_to_none=False) or False (never).
    """
    gen = torch.Generator().manual_seed(seed)
    crit = nn.CrossEntropyLoss()
    losses = []
    for i in range(steps):
        if zero_grad:
            if opt is not None:
                opt.zero_grad(set_to_none=zero_grad is True)
            else:
                model.zero_grad(set_to_none=zero_grad is True)
        loss = None
        for _ in range(accum):
            x, y = batch_for(model, batch, gen)
            if inputs_hook is not None:
                x = inputs_hook(i, x)
            out = model(x)
            loss = crit(out, y)
            (loss / accum).backward()
        if order == "after":
            _opt_step(model, opt, lr)
        if rec is not None:
            rec.step(loss, outputs=out, targets=y, inputs=x)
        if order == "before":
            _opt_step(model, opt, lr)
        if on_step is not None:
            on_step(i)
        losses.append(float(loss.detach()))
    return losses


def record_full_batch(path: Any, model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable,
                      x: torch.Tensor, y: torch.Tensor, steps: int, **options: Any) -> None:
    """``steps`` full-batch steps of the contract loop on ``(x, y)``, recorded to ``path`` with the
    recorder ``options``."""
    with TraceRecorder(path, model, optimizer=opt, loss_fn=loss_fn, **options) as rec:
        for _ in range(steps):
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            rec.step(loss, outputs=out, targets=y, inputs=x)
            opt.step()


def _opt_step(model: nn.Module, opt: torch.optim.Optimizer | None, lr: float) -> None:
    if opt is not None:
        opt.step()
        return
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


def read(path: Any) -> dict[str, Any]:
    """Every dataset of a trace as numpy, plus ``attrs:<group>`` dicts."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["attrs:/"] = dict(f.attrs)
        if "status" in f:  # format 2: the status record's fields
            rec = f["status"][0]
            out["status"] = {name: rec[name].item() for name in rec.dtype.names}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
                if obj.attrs:
                    out[f"attrs:{name}"] = dict(obj.attrs)
            elif obj.attrs:
                out[f"attrs:{name}"] = dict(obj.attrs)

        f.visititems(visit)
    return out


def status(f: h5py.File) -> dict[str, Any]:
    """The status record of an open trace file (``steps_written``, ``closed_cleanly``, …)."""
    ds = f["status"]
    ds.refresh() if f.swmr_mode else None
    rec = ds[0]
    return {name: rec[name].item() for name in rec.dtype.names}


def names(arr: np.ndarray) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in arr]
