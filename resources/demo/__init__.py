"""The demo's scenarios: small training scripts with classic bugs, each recording a trace.

They ship with the package (``trainwreck demo`` works from any install); the full
example library in a checkout's ``examples/`` re-exports them. ``DEMO_SCENARIOS`` is
the default selection, in the order the demo records them (quick, telling ones first).
``python -m resources.demo.record`` records a selection in its own process.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

DEMO_SCENARIOS = (
    "seed003_double_softmax_binary",
    "seed000_large_init_onehot",
    "seed001_constant_targets",
    "seed001_relu_output",
    "seed002_symmetric_init",
    "seed004_label_leakage",
    "lr_too_high",
    "dead_relu",
    "healthy_cnn_digits",
)


def names() -> list[str]:
    """Scenario module names shipped here, sorted, without importing them."""
    skip = {"record"}
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
                  and m.name not in skip)


def run_scenario(name: str, out: str, quick: bool = False, **kwargs: Any) -> str:
    """Run scenario ``name``, recording its trace to ``out``; returns the trace path."""
    if name not in names():
        raise KeyError(f"unknown scenario {name!r}; one of: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}").run(out, quick=quick, **kwargs)
