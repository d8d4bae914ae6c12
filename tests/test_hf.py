"""The Hugging Face Trainer callback with the real transformers: records, three-bug acceptance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.trace import open_trace
from tests import _three_bugs as B

transformers = pytest.importorskip("transformers")
from recorders.hf import TrainwreckCallback  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")


class NetConfig(transformers.PretrainedConfig):
    model_type = "trainwreck-net"

    def __init__(self, softmax: bool = False, **kw):
        super().__init__(**kw)
        self.softmax = softmax


class NetForClassification(transformers.PreTrainedModel):
    """The shared test MLP as a Trainer-ready model: returns ``(loss, logits)``."""

    config_class = NetConfig

    def __init__(self, config: NetConfig) -> None:
        super().__init__(config)
        self.net = B.Net(softmax=config.softmax).net
        self.loss_fn = nn.CrossEntropyLoss()
        self.post_init()

    def _init_weights(self, module):  # keep torch's default init, as the raw loop does
        pass

    def forward(self, x, labels=None):
        z = self.net(x)
        out = torch.softmax(z, -1) if self.config.softmax else z
        loss = self.loss_fn(out, labels) if labels is not None else None
        return transformers.modeling_outputs.SequenceClassifierOutput(loss=loss, logits=out)


class Blobs(torch.utils.data.Dataset):
    def __init__(self, n=2048, seed=0):
        self.x, self.y = B.data(n, seed)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def model_for(bug):
    torch.manual_seed(0)
    model = NetForClassification(NetConfig(softmax=bug == "double_softmax"))
    model.net.load_state_dict(B.model_for(bug).net.state_dict())
    if bug == "frozen_layer":
        for p in model.net[2].parameters():
            p.requires_grad = False
    return model


def _train(tmp_path, name, model, lr, steps=B.STEPS, evaluate=False, **kw):
    path = str(tmp_path / f"{name}.h5")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=B.BATCH, max_steps=steps,
        learning_rate=lr, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True, logging_strategy="no",
        eval_strategy="steps" if evaluate else "no", eval_steps=20, seed=0, dataloader_num_workers=0, **kw)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Blobs(),
                                   eval_dataset=Blobs(128, seed=3) if evaluate else None,
                                   callbacks=[TrainwreckCallback(path)])
    trainer.train()
    return path


@pytest.mark.parametrize("bug", sorted(B.BUGS))
def test_three_bugs_get_the_same_top_cause_as_the_raw_loop(tmp_path, bug):
    raw = B.top_cause(B.raw_loop(str(tmp_path / "raw.h5"), bug))
    hf = B.top_cause(_train(tmp_path, "hf", model_for(bug), B.lr_for(bug)))
    assert raw == hf == B.BUGS[bug]


def test_healthy_run_is_clean_with_eval_loss_and_accumulation(tmp_path):
    path = _train(tmp_path, "ok", model_for(None), 0.2, steps=60, evaluate=True,
                  gradient_accumulation_steps=2)
    assert B.worst(path) == []
    with open_trace(path) as tr:
        assert tr.n_steps == 60  # one row per optimizer step, not per micro-batch
        assert tr.has("outputs") and tr.has("targets") and tr.has("inputs")
        assert tr.meta["loss"]["class"] == "CrossEntropyLoss"
        assert np.isfinite(tr.param_stat("update_ratio")[0]).all()
        steps, v = tr.scalar("val_loss")
        assert list(steps) == [19, 39, 59] and np.isfinite(v).all()


def test_a_stock_architecture_built_from_a_config(tmp_path):
    """A real transformers model (no download): token ids in, labels, logits out."""
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=3)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (64, 8), generator=g)
    data = [{"input_ids": i, "labels": int(i[0]) % 3} for i in ids]
    path = str(tmp_path / "bert.h5")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=6, report_to="none",
        save_strategy="no", disable_tqdm=True, use_cpu=True, logging_strategy="no")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                   callbacks=[TrainwreckCallback(path)])
    trainer.train()
    with open_trace(path) as tr:
        assert tr.n_steps == 6 and np.isfinite(tr.loss()).all()
        assert tr.batch_attrs("outputs")["shape"] == [8, 3] and tr.batch_attrs("inputs")["shape"] == [8, 8]
        assert tr.meta["loss"]["class"] == "CrossEntropyLoss" and tr.meta["optimizer"]["class"] == "AdamW"
