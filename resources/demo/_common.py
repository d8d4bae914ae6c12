"""Shared plumbing for the example scenarios: data, loaders, the train loop, the CLI.

Shipped with the demo; ``examples._common`` is this module.

Each scenario module keeps its *bug* in plain sight in its own ``run``; what lives here
is the boring part every script would otherwise repeat: loading a small offline dataset
(scikit-learn bundles), a seeded ``DataLoader``, the CONTRACT §2 loop, recording it
(``record_training``; ``record_fit``: loader, recording and summary line in one call), a
one-line summary of what the trained model does (``describe``, ``report``), and the
``--out/--steps/--seed/--quick`` command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from recorders import TraceRecorder

DATASETS = ("digits", "breast_cancer", "wine", "iris", "diabetes", "blobs")


@dataclass
class Data:
    """A train/validation split as float32 features and class-index or float targets."""

    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y, self.y_val]).max().item()) + 1

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation rows ``(x_val, y_val)``."""
        return self.x_val, self.y_val


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale columns to zero mean, unit variance using ``train``'s statistics (constant columns kept)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


def raw_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets of a scikit-learn bundled dataset (offline), as float64 / int64 or float64."""
    from sklearn import datasets

    if name == "blobs":  # 5 overlapping Gaussian classes in 10 dimensions (seed 000's shapes)
        x, y = datasets.make_classification(n_samples=1000, n_features=10, n_informative=6,
                                            n_redundant=2, n_classes=5, n_clusters_per_class=1,
                                            class_sep=1.5, random_state=0)
        return x.astype(np.float64), y.astype(np.int64)
    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
               "wine": datasets.load_wine, "iris": datasets.load_iris, "diabetes": datasets.load_diabetes}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; one of {DATASETS}")
    bunch = loaders[name]()
    y = bunch.target.astype(np.float64 if name == "diabetes" else np.int64)
    return bunch.data.astype(np.float64), y


def split(x: np.ndarray, y: np.ndarray, val_frac: float = 0.2, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A shuffled train/validation split (fixed by ``seed``)."""
    idx = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_frac))
    val, tr = idx[:n_val], idx[n_val:]
    return x[tr], y[tr], x[val], y[val]


def to_data(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> Data:
    """Wrap numpy arrays as tensors: float32 features, int64 class indices or float32 targets."""
    ty = torch.long if np.issubdtype(y.dtype, np.integer) else torch.float32
    return Data(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=ty),
                torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=ty))


def dataset(name: str, *, scale_x: bool = True, scale_y: bool = False, seed: int = 0) -> Data:
    """Load ``name``, split 80/20, optionally standardise features (and regression targets)."""
    x, y = raw_dataset(name)
    x, y, xv, yv = split(x, y, seed=seed)
    if scale_x:
        x, xv = standardize(x, xv)
    if scale_y:
        y, yv = (a[:, 0] for a in standardize(y[:, None], yv[:, None]))
    return to_data(x, y, xv, yv)


def make_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0,
                shuffle: bool = True, drop_last: bool = True) -> DataLoader:
    """A ``DataLoader`` whose shuffling is fixed by ``seed`` (its own generator).

    The ragged last batch is dropped by default so that every step sees a full batch.
    """
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=gen,
                      drop_last=drop_last and len(x) > batch_size)


def batches(loader: DataLoader, steps: int) -> Iterator[tuple[int, bool, torch.Tensor, torch.Tensor]]:
    """Yield ``(step, epoch_ended, x, y)`` for ``steps`` batches, cycling through epochs."""
    step = 0
    while step < steps:
        n = len(loader)
        for i, (x, y) in enumerate(loader):
            yield step, i == n - 1, x, y
            step += 1
            if step >= steps:
                return


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor) -> float:
    """Loss of ``model`` on ``(x, y)`` in eval mode (train mode is restored)."""
    was_training = model.training
    model.eval()
    loss = float(loss_fn(model(x), y))
    model.train(was_training)
    return loss


def fit(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable, loader: DataLoader, rec,
        steps: int, *, record_after_step: bool = False, clip: float | None = None,
        scheduler=None, val: tuple[torch.Tensor, torch.Tensor] | None = None,
        stop_nonfinite: bool = False) -> float:
    """The CONTRACT §2 loop for ``steps`` optimisation steps; returns the last training loss.

    ``rec.step`` is called after ``backward`` and, by default, before ``opt.step()``
    (``record_after_step=True`` moves it after). With ``val``, ``val_loss`` is logged
    at the end of every epoch. ``stop_nonfinite``: training stops after the step of the
    first non-finite loss, as many scripts do.
    """
    model.train()
    loss = torch.tensor(float("nan"))
    for _, epoch_end, x, y in batches(loader, steps):
        opt.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        if not record_after_step:
            rec.step(loss=loss, outputs=out, targets=y, inputs=x)
        opt.step()
        if record_after_step:
            rec.step(loss=loss, outputs=out, targets=y, inputs=x)
        if scheduler is not None:
            scheduler.step()
        if epoch_end and val is not None:
            rec.log("val_loss", evaluate(model, loss_fn, *val))
        if stop_nonfinite and not torch.isfinite(loss):
            break
    return float(loss.detach())


def record_training(out: str, model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable, loader,
                    steps: int, *, train: Callable[..., float] = fit,
                    recorded_loss_fn: Callable | None = None, **options) -> float:
    """Train with ``train(model, opt, loss_fn, loader, rec, steps, **options)`` (default :func:`fit`)
    under a ``TraceRecorder`` writing ``out``; returns the loop's last loss.

    The recorder is given ``recorded_loss_fn`` as the loss (default ``loss_fn``: a script that
    trains on a wrapped loss still hands the recorder the plain criterion).
    """
    with TraceRecorder(out, model, optimizer=opt, loss_fn=recorded_loss_fn or loss_fn) as rec:
        return train(model, opt, loss_fn, loader, rec, steps, **options)


def report(loss: float, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, task: str,
           probs: bool = False, validation: bool = True, label: str = "final loss", fmt: str = ".4f",
           note: str = "") -> None:
    """Print a run's last line: ``label`` and the loss (as ``fmt``, then ``note``), and what the
    trained model does on ``(x, y)`` (:func:`describe`; ``validation`` rows, or the training rows)."""
    where = "validation " if validation else ""
    print(f"{label} {loss:{fmt}}{note}; {where}{describe(model, x, y, task=task, probs=probs)}")


def record_fit(out: str, model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable,
               data: Data | tuple[torch.Tensor, torch.Tensor], steps: int, *, seed: int, task: str,
               batch_size: int | None = None, loader=None, log_val: bool = False, probs: bool = False,
               label: str = "final loss", fmt: str = ".4f", note: str = "",
               train: Callable[..., float] = fit, **options) -> str:
    """A scenario's whole recorded run: seeded batches of ``data``, ``steps`` steps of ``train``
    recorded to ``out``, then :func:`report`'s line; returns ``out``.

    ``data`` is a :class:`Data` (trained on its training rows, described on its validation
    rows, whose loss ``log_val`` logs every epoch) or ``(x, y)`` (described on the rows it
    trained on). ``loader`` replaces the ``batch_size`` batches (a loader that changes
    mid-run, for ``_long.train``); ``options`` go to ``train``.
    """
    x, y = (data.x, data.y) if isinstance(data, Data) else data
    shown = data.val if isinstance(data, Data) else (x, y)
    if loader is None:
        if batch_size is None:
            raise ValueError("record_fit needs a batch_size or a loader")
        loader = make_loader(x, y, batch_size=batch_size, seed=seed)
    if log_val:
        options["val"] = shown
    loss = record_training(out, model, opt, loss_fn, loader, steps, train=train, **options)
    report(loss, model, *shown, task=task, probs=probs, validation=isinstance(data, Data), label=label,
           fmt=fmt, note=note)
    return out


@torch.no_grad()
def describe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, task: str,
             probs: bool = False) -> str:
    """One line on what the trained model does on ``(x, y)``: the failure as a user would see it.

    ``task`` is ``"multiclass"`` (argmax of columns), ``"binary"`` (one logit, or one
    probability with ``probs=True``) or ``"regression"``.
    """
    was_training = model.training
    model.eval()
    out = model(x)
    model.train(was_training)
    if task == "regression":
        pred = out.reshape(-1)
        target = y.reshape(-1).float()
        r2 = 1 - float(((pred - target) ** 2).mean() / target.var(unbiased=False).clamp_min(1e-12))
        zero = float((pred.abs() < 1e-6).float().mean())
        return (f"regression: R^2 {r2:.3f}, prediction mean {float(pred.mean()):.3g} "
                f"std {float(pred.std()):.3g} (target std {float(target.std()):.3g}), "
                f"{zero:.0%} of predictions exactly 0")
    if task == "binary":
        p = out.reshape(-1) if probs else torch.sigmoid(out.reshape(-1))
        pred = (p > 0.5).long()
    else:
        pred = out.argmax(dim=1)
    acc = float((pred == y.reshape(-1).long()).float().mean())
    counts = torch.bincount(pred, minlength=2)
    top = int(counts.argmax())
    msg = f"{task}: accuracy {acc:.1%}, predicts class {top} for {float(counts[top]) / len(pred):.0%} of rows"
    if task == "multiclass":
        sm = torch.softmax(out, dim=1) if not probs else out
        msg += f", mean max-probability {float(sm.max(dim=1).values.mean()):.3f}"
    return msg


def main(run: Callable[..., str], file: str, doc: str | None) -> None:
    """The scenario command line: ``--out``, ``--steps``, ``--seed``, ``--quick``; ``file`` = ``__file__``."""
    name = os.path.splitext(os.path.basename(file))[0]
    here = os.path.basename(os.path.dirname(os.path.abspath(file)))
    package = "resources.demo" if here == "demo" else "examples"
    first = (doc or name).strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog=f"python -m {package}.{name}", description=first)
    parser.add_argument("--out", default=os.path.join("traces", f"{name}.h5"),
                        help="trace file (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the script's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="a short run that still shows the failure")
    args = parser.parse_args()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    path = run(args.out, steps=args.steps, seed=args.seed, quick=args.quick)
    print(f"trace written to {path}")
