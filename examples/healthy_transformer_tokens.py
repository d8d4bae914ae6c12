"""Healthy: a two-layer Transformer encoder that names the most frequent token of a sequence.

Nothing is wrong: token + position embeddings (d=32, 4 heads, dropout 0.1), mean pooling,
a linear head, AdamW at 1e-3 (weight decay 1e-2), logits into ``CrossEntropyLoss``. The data
are synthetic sequences of 12 tokens over a vocabulary of 6 with one planted majority token
(ties removed). Loss falls from ~1.8 to ~0.1; accuracy > 95 %.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples import _common as C

EXPECTED: str | None = None
SYMPTOMS: tuple[str, ...] = ()
SEED: str | None = None

VOCAB, LENGTH = 6, 12


def majority_sequences(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` token sequences with a unique most frequent token, and that token as the label."""
    seqs, labels = [], []
    while len(seqs) < n:
        planted = rng.integers(VOCAB)
        s = np.where(rng.random(LENGTH) < 0.3, planted, rng.integers(VOCAB, size=LENGTH))
        counts = np.bincount(s, minlength=VOCAB)
        if (counts == counts.max()).sum() == 1:
            seqs.append(s)
            labels.append(int(counts.argmax()))
    return np.array(seqs, dtype=np.int64), np.array(labels, dtype=np.int64)


class MajorityTransformer(nn.Module):
    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(LENGTH, d)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))
        return self.head(self.encoder(h).mean(dim=1))


def run(out: str, steps: int | None = None, seed: int = 0, quick: bool = False) -> str:
    """Train for ``steps`` steps (default 1500, quick 150), recording to ``out``."""
    steps = steps or (150 if quick else 1500)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = (torch.as_tensor(a) for a in majority_sequences(2000, rng))
    x_val, y_val = (torch.as_tensor(a) for a in majority_sequences(400, rng))
    model = MajorityTransformer()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    return C.record_fit(out, model, opt, nn.CrossEntropyLoss(), C.Data(x, y, x_val, y_val), steps, seed=seed,
                        batch_size=64, log_val=True, task="multiclass")


if __name__ == "__main__":
    C.main(run, __file__, __doc__)
