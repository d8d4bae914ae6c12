"""Hugging Face ``Trainer``: ``Trainer(..., callbacks=[TrainwreckCallback("run.h5")])``.

Trainer callbacks see neither the batch nor the model's output, so a forward hook on the
model (``with_kwargs``) keeps, for each training forward with grad enabled: the loss and
``logits`` of its output, ``labels`` as targets, and the first of ``input_ids`` /
``pixel_values`` / ``input_values`` / ``inputs_embeds`` (or the first positional
argument) as inputs. In the Trainer's own order the row is then written at
``on_pre_optimizer_step``: after every micro-batch's backward (once per optimizer step
under gradient accumulation, with the mean of their losses) and right before
``optimizer.step()``. The Trainer clips gradients (``max_grad_norm``, 1.0 by default)
just before that hook, so the gradients recorded are the clipped ones; pass
``max_grad_norm=0`` to record them raw. ``eval_loss`` from each evaluation is logged as
``val_loss``.

``TrainwreckCallback(path, **options)`` takes the options of
:class:`recorders.TraceRecorder`, plus ``loss_fn`` (by default a loss module found in the
model, else the loss the model's task implies: cross-entropy for classification and
language modelling, MSE for regression, BCE-with-logits for multi-label).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from recorders import TraceRecorder

_INPUT_KEYS = ("input_ids", "pixel_values", "input_values", "inputs_embeds", "x", "input", "inputs")
_CE_TASKS = ("ForSequenceClassification", "ForCausalLM", "ForTokenClassification", "ForMaskedLM",
             "ForImageClassification", "ForMultipleChoice", "LMHeadModel")


def infer_loss(model: nn.Module) -> nn.Module | None:
    """The loss the model computes: a loss module inside it, else the one its task implies."""
    for child in model.modules():
        if isinstance(child, nn.modules.loss._Loss):
            return child
    problem = getattr(getattr(model, "config", None), "problem_type", None)
    if problem == "regression":
        return nn.MSELoss()
    if problem == "multi_label_classification":
        return nn.BCEWithLogitsLoss()
    if any(type(model).__name__.endswith(task) for task in _CE_TASKS):
        return nn.CrossEntropyLoss(ignore_index=-100)
    return None


def _field(output: Any, name: str, index: int) -> Any:
    if isinstance(output, dict) or hasattr(output, name):
        return output.get(name) if isinstance(output, dict) else getattr(output, name)
    if isinstance(output, (tuple, list)) and len(output) > index:
        return output[index]
    return None


class TrainwreckCallback(TrainerCallback):
    """Record a Trainer run to the trace ``path`` (options as for ``TraceRecorder``)."""

    def __init__(self, path: Any, loss_fn: Any = None, **options: Any) -> None:
        self.path = path
        self.loss_fn = loss_fn
        self.options = options
        self.rec: TraceRecorder | None = None
        self._handle: Any = None
        self._seen: tuple[Any, Any, Any] = (None, None, None)
        self._losses: list[torch.Tensor] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        if model is None or self.rec is not None:
            return
        opt = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
        loss_fn = self.loss_fn if self.loss_fn is not None else infer_loss(model)
        self.rec = TraceRecorder(self.path, model, optimizer=opt, loss_fn=loss_fn, **self.options)
        self._handle = model.register_forward_hook(self._on_forward, with_kwargs=True)

    def _on_forward(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        loss = _field(output, "loss", 0)
        has_loss = isinstance(loss, torch.Tensor) and loss.dim() == 0
        logits = _field(output, "logits", 1 if has_loss else 0)
        if has_loss:
            self._losses.append(loss.detach())
        first = args[0] if args else None
        inputs = next((kwargs[k] for k in _INPUT_KEYS if kwargs.get(k) is not None), first)
        self._seen = (logits, kwargs.get("labels"), inputs)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.rec is None:
            return
        losses, self._losses = self._losses, []
        loss = torch.stack([t.float() for t in losses]).mean() if losses else math.nan
        outputs, targets, inputs = self._seen
        self.rec.step(loss=loss, outputs=outputs, targets=targets, inputs=inputs)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any
    ) -> None:
        value = (metrics or {}).get("eval_loss")
        if self.rec is not None and value is not None:
            self.rec.log("val_loss", value)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self.rec is not None:
            self.rec.close()
