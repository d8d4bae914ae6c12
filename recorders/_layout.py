"""What the writer creates at the first step, and how a per-step row maps onto datasets.

A recorded step is one flat float64 vector (the *row*): the loss, the grad probe, the
raw parameter and module sums, then the batch summaries. :class:`Layout` names each
segment of it and every dataset to create; the writer needs nothing else. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recorders import schema

# Rows per chunk of growable datasets: aim at ~64 KiB chunks, within these bounds.
CHUNK_BYTES = 64 * 1024
CHUNK_ROWS = (16, 1024)


def chunk_rows(tail: tuple[int, ...], itemsize: int) -> int:
    row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * itemsize)
    return int(min(max(CHUNK_BYTES // row_bytes, CHUNK_ROWS[0]), CHUNK_ROWS[1]))


@dataclass
class Growable:
    """A dataset growing along axis 0 (labelled ``step``)."""

    path: str
    dtype: str
    tail: tuple[int, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None  # chunk rows; None = from CHUNK_BYTES
    compress: bool = False  # lzf: the NaN of unmeasured rows costs almost nothing on disk

    def chunks(self) -> tuple[int, ...]:
        n = self.rows or chunk_rows(self.tail, np.dtype(self.dtype).itemsize)
        return (n, *self.tail)


@dataclass
class RowField:
    """A per-step dataset filled straight from a slice of the row."""

    path: str
    start: int
    tail: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.tail, dtype=np.int64))


@dataclass
class Layout:
    """Everything created at the first step."""

    n_params: int
    n_modules: int
    n_groups: int
    numel: np.ndarray  # (P,) int64
    bounded: np.ndarray  # (M,) bool
    width: int = 0  # row length
    segments: dict[str, slice] = field(default_factory=dict)
    fields: list[RowField] = field(default_factory=list)
    static: dict[str, np.ndarray] = field(default_factory=dict)
    group_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    growable: list[Growable] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    unit_modules: list[int] = field(default_factory=list)  # j with a units/alive/m{j}
    snapshot_keys: list[int] = field(default_factory=list)  # param indices snapshotted
    batch_block: Any = None  # numpy callable: CPU batch copies of n rows -> (n, batch width)
    summary_block: int = 0  # steps per block of the finest summary level (0: no summary)

    def add_segment(self, name: str, size: int) -> slice:
        """Reserve ``size`` row entries for ``name``."""
        sl = slice(self.width, self.width + size)
        self.segments[name] = sl
        self.width += size
        return sl

    def add_field(self, path: str, tail: tuple[int, ...], dtype: str) -> RowField:
        """A row segment that is written as is to ``path`` ``(None, *tail)``."""
        f = RowField(path, self.width, tail, dtype)
        self.add_segment(path, f.size)
        self.fields.append(f)
        return f

    def row_datasets(self) -> list[Growable]:
        """Every ``(N, ...)`` dataset that shares the row index."""
        out = [
            Growable(schema.STEP, "int64"),
            Growable(schema.TIME, "float64"),
            Growable(schema.LOSS, "float64"),
            Growable(schema.LR, "float64", (self.n_groups,)),
            Growable(schema.GRAD_CARRY, "float32"),
            Growable(schema.MEASURED, "uint8"),
        ]
        out += [
            Growable(f"{schema.PARAMS}/{n}", "float32", (self.n_params,), compress=True)
            for n in schema.PARAM_STATS
        ]
        out += [
            Growable(f"{schema.MODULES}/{n}", "float32", (self.n_modules,), compress=True)
            for n in schema.MODULE_STATS
        ]
        out += [Growable(f.path, f.dtype, f.tail) for f in self.fields]
        return out
