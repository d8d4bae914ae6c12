"""The example library: runnable training scripts, one per failure scenario or healthy run.

Every public module here is a scenario with ``EXPECTED`` (the cause code that must rank
first, None for a healthy run), ``SYMPTOMS``, ``SEED`` and
``run(out, steps=None, seed=0, quick=False) -> str``; optionally ``ONSET = (lo, hi)``, where
the first cause's onset (``steps[0]``) must lie (steps, or fractions of the recorded run when
≤ 1.0; without it, the first tenth of the run: the fault acts from the start). ``SCENARIOS`` maps module names
to modules (found with ``pkgutil``, sorted); it is built on first access so that
``python -m examples.<name> --help`` does not import every scenario.
See ``docs/examples.md`` for the table.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

__all__ = ["SCENARIOS", "names", "run_scenario"]

_cache: dict[str, ModuleType] | None = None


def names() -> list[str]:
    """Scenario module names, sorted, without importing them."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _scenarios() -> dict[str, ModuleType]:
    global _cache
    if _cache is None:
        _cache = {n: importlib.import_module(f"{__name__}.{n}") for n in names()}
    return _cache


def run_scenario(name: str, out: str, quick: bool = False, **kwargs: Any) -> str:
    """Run scenario ``name``, recording its trace to ``out``; returns the trace path."""
    if name not in names():
        raise KeyError(f"unknown scenario {name!r}; one of: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}").run(out, quick=quick, **kwargs)


def __getattr__(attr: str) -> Any:
    if attr == "SCENARIOS":
        return _scenarios()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
