"""Recorder options: names, defaults and validation (documented in docs/trace-format.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

_POSITIVE_INTS = (
    "every",
    "snapshot_every",
    "hist_every",
    "update_every",
    "sample_rows",
    "max_features",
    "max_columns",
    "snapshot_max_elems",
    "batch_rows",
    "act_max_elems",
    "snapshot_bytes",
    "summary_block",
)
_NON_NEGATIVE_INTS = ("dense_start", "flight_steps")


@dataclass(frozen=True)
class Options:
    """See :class:`recorders.TraceRecorder` for what each option does."""

    every: int = 1
    budget: float = 0.03
    dense_start: int = 100
    flight_steps: int = 64
    snapshot_every: int = 100
    snapshot_bytes: int = 512 << 20
    hist_every: int = 100
    activations: bool = True
    update_every: int = 1
    batch_rows: int = 512
    act_max_elems: int = 1 << 20
    summary_block: int = 1024
    sample_rows: int = 16
    max_features: int = 64
    max_columns: int = 256
    snapshot_max_elems: int = 65536
    flush_secs: float = 1.0
    swmr: bool = True

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Options:
        """Validated options; unknown names and out-of-range values raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown TraceRecorder option(s): {', '.join(unknown)}")
        opts = cls(**kwargs)
        for name in _POSITIVE_INTS:
            value = getattr(opts, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TraceRecorder option {name} must be an int >= 1, got {value!r}")
        for name in _NON_NEGATIVE_INTS:
            value = getattr(opts, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TraceRecorder option {name} must be an int >= 0, got {value!r}")
        if isinstance(opts.budget, bool) or not isinstance(opts.budget, (int, float)) or not opts.budget > 0:
            raise ValueError(f"TraceRecorder option budget must be a number > 0, got {opts.budget!r}")
        if not opts.flush_secs > 0:
            raise ValueError(f"TraceRecorder option flush_secs must be > 0, got {opts.flush_secs!r}")
        return opts
