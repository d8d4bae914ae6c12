"""Test-wide setup: offscreen Qt, strict recorder, one torch thread."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRAINWRECK_STRICT", "1")


def pytest_configure(config):  # noqa: D103
    import torch

    torch.set_num_threads(1)
