"""PyTorch Lightning: ``Trainer(callbacks=[TrainwreckCallback("run.h5")])`` records the fit.

Where each piece comes from, in Lightning's own hook order:

- inputs and targets: the batch at ``on_train_batch_start`` (``(x, y, …)``, a dict with
  ``x``/``input``/``inputs`` and ``y``/``target``/``targets``/``label``/``labels``, or a tensor);
- outputs: a forward hook on the ``LightningModule`` (or, when ``training_step`` calls a
  submodule instead of ``self(x)``, on its last-called direct child that is not a loss);
- loss: ``on_before_backward``, un-divided by ``accumulate_grad_batches``; the row holds the
  mean over the backward passes since the previous row (the micro-batches of one step);
- gradients and weights: ``rec.step`` at ``on_before_optimizer_step`` of the first
  optimizer — after ``backward`` and AMP unscaling, before gradient clipping and before
  ``optimizer.step`` (also under manual optimisation, where ``opt.step()`` runs the same
  hook). With gradient accumulation that is once per optimizer step. With several
  optimizers the rows follow the first one's steps (``trainer.optimizers[0]``);
- ``val_loss``: the metric the module logged under that name, after each validation run
  (not the sanity check), as ``rec.log("val_loss", v)``;
- the AMP ``GradScaler`` of a ``precision="16-mixed"`` run, as ``amp_scale``/``amp_skipped``.

Under DDP every rank writes its own ``run.rank{r}.h5``. ``TrainwreckCallback(path,
**options)`` takes the options of :class:`recorders.TraceRecorder`, plus ``loss_fn`` (by
default the first loss module found among the module's attributes).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from recorders import TraceRecorder

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the standalone `pytorch_lightning` distribution
    from pytorch_lightning.callbacks import Callback

_INPUT_KEYS = ("x", "input", "inputs", "input_ids", "pixel_values", "features")
_TARGET_KEYS = ("y", "target", "targets", "label", "labels")


def split_batch(batch: Any) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a training batch (``None`` where it cannot tell)."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0], batch[1] if len(batch) > 1 else None
    if isinstance(batch, dict):
        pick = [next((batch[k] for k in keys if k in batch), None) for keys in (_INPUT_KEYS, _TARGET_KEYS)]
        return pick[0], pick[1]
    return None, None


def _find_loss(module: nn.Module) -> nn.Module | None:
    for child in module.modules():
        if isinstance(child, nn.modules.loss._Loss):
            return child
    return None


class TrainwreckCallback(Callback):
    """Record a Lightning fit to the trace ``path`` (options as for ``TraceRecorder``)."""

    def __init__(self, path: Any, loss_fn: Any = None, **options: Any) -> None:
        super().__init__()
        self.path = path
        self.loss_fn = loss_fn
        self.options = options
        self.rec: TraceRecorder | None = None
        self._optimizer: Any = None
        self._handles: list[Any] = []
        self._batch: tuple[Any, Any] = (None, None)
        self._out_self: Any = None
        self._out_child: Any = None
        self._losses: list[torch.Tensor] = []

    # ------------------------------------------------------------------ lifecycle
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._optimizer = trainer.optimizers[0] if trainer.optimizers else None
        options = dict(self.options)
        scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
        if scaler is not None:
            options.setdefault("scaler", scaler)
        loss_fn = self.loss_fn if self.loss_fn is not None else _find_loss(pl_module)
        self.rec = TraceRecorder(self.path, pl_module, optimizer=self._optimizer, loss_fn=loss_fn, **options)
        self._handles = [pl_module.register_forward_hook(self._on_self_forward)]
        for child in pl_module.children():
            if not isinstance(child, nn.modules.loss._Loss):
                self._handles.append(child.register_forward_hook(self._on_child_forward))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close()

    def _close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.rec is not None:
            self.rec.close()

    # ------------------------------------------------------------------ what a step saw
    def _on_self_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._out_self = output

    def _on_child_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._out_child = output

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._batch = split_batch(batch)
        self._out_self = self._out_child = None

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        scale = trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1
        self._losses.append(loss.detach() * scale)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        mine = self._optimizer is None or _unwrap_opt(optimizer) is self._optimizer
        if self.rec is None or not mine:
            return
        losses, self._losses = self._losses, []
        loss = torch.stack([t.float().mean() for t in losses]).mean() if losses else math.nan
        outputs = self._out_self if self._out_self is not None else self._out_child
        inputs, targets = self._batch
        self.rec.step(loss=loss, outputs=outputs, targets=targets, inputs=inputs)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.rec is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss")
        if value is not None:
            self.rec.log("val_loss", value)


def _unwrap_opt(optimizer: Any) -> Any:
    """The torch optimizer behind a ``LightningOptimizer``."""
    return getattr(optimizer, "optimizer", optimizer)
