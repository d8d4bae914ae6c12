"""Mixed precision: the ``GradScaler`` passed as ``scaler=`` logged as scalars at each row.

``amp_scale`` is the loss scale in force at the ``rec.step`` call; ``amp_skipped`` is 1
when the scale dropped since the previous recorded row (a ``GradScaler`` backs off only
after a step it skipped for Inf/NaN gradients), else 0. Reading the scale is one host
synchronisation per recorded row, paid only when a scaler was passed.
"""

from __future__ import annotations

import math
from typing import Any

SCALE, SKIPPED = "amp_scale", "amp_skipped"


class ScalerLog:
    def __init__(self, scaler: Any) -> None:
        if not callable(getattr(scaler, "get_scale", None)):
            kind = type(scaler).__name__
            raise TypeError(f"TraceRecorder option scaler must be a torch GradScaler, got {kind}")
        self.scaler = scaler
        self.last = math.nan

    def after_step(self, engine: Any) -> None:
        """Log the scale for the row ``engine`` just recorded (nothing on unrecorded calls)."""
        if not engine.recorded(engine.last_step):
            return
        enabled = getattr(self.scaler, "is_enabled", lambda: True)()
        if not enabled:
            return
        scale = float(self.scaler.get_scale())
        engine.log(SCALE, scale)
        engine.log(SKIPPED, 1.0 if scale < self.last else 0.0)
        self.last = scale
