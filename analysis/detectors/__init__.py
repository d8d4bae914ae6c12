"""Every detector, one module per finding code, registered on import.

Modules are imported in sorted order; a module's name is its finding code.
"""

from __future__ import annotations

import importlib
import pkgutil

from analysis.detectors._registry import REGISTRY, Detector, detector

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY", "Detector", "detector"]
