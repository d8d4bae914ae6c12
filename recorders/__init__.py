"""Record a PyTorch training run to an HDF5 trace.

``from recorders import TraceRecorder`` is the whole public API. Importing this
package does not import torch: ``TraceRecorder`` is loaded on first access, so
the torch-free ``recorders.schema`` stays cheap for the analysis side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["TraceRecorder", "TrainwreckWarning"]

if TYPE_CHECKING:
    from recorders._recorder import TraceRecorder, TrainwreckWarning


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recorders import _recorder

        return getattr(_recorder, name)
    raise AttributeError(f"module 'recorders' has no attribute {name!r}")
