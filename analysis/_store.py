"""Storage backends behind ``Trace``: an HDF5 file, or arrays in memory.

Only this module and ``analysis.trace`` touch h5py. The in-memory store lets
detectors and views be tested on synthetic arrays with the same ``Trace`` API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np


def decode(value: Any) -> Any:
    """Attributes come back as bytes, numpy scalars or str: normalise to Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def decode_json(value: Any, default: Any = None) -> Any:
    """Parse a JSON attribute; anything unparsable gives ``default`` (never eval)."""
    value = decode(value)
    if not isinstance(value, str):
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default


class MemoryStore:
    """Datasets as numpy arrays keyed by path, attributes as dicts keyed by group path."""

    live = False

    def seconds_since_write(self) -> float:
        return float("inf")

    def __init__(
        self, data: Mapping[str, np.ndarray], attrs: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self.data = {k.strip("/"): np.asarray(v) for k, v in data.items()}
        self._attrs = {k.strip("/"): dict(v) for k, v in (attrs or {}).items()}

    def exists(self, path: str) -> bool:
        path = path.strip("/")
        return path in self.data or path in self._attrs or any(
            k.startswith(path + "/") for k in self.data
        )

    def attrs(self, path: str = "") -> dict[str, Any]:
        return dict(self._attrs.get(path.strip("/"), {}))

    def shape(self, path: str) -> tuple[int, ...]:
        return tuple(self.data[path.strip("/")].shape)

    def read(self, path: str, sel: Any = ()) -> np.ndarray:
        return np.asarray(self.data[path.strip("/")][sel])

    def keys(self, path: str) -> list[str]:
        prefix = path.strip("/") + "/"
        names = {k[len(prefix) :].split("/")[0] for k in self.data if k.startswith(prefix)}
        return sorted(names)

    def refresh(self) -> None:
        """Nothing to re-read in memory."""

    def close(self) -> None:
        """Nothing to release."""


class H5Store:
    """A read-only h5py file; datasets opened lazily and refreshed for live (SWMR) files."""

    def __init__(self, handle: Any, path: str | None = None) -> None:
        self._f = handle
        self._path = path
        self._datasets: dict[str, Any] = {}
        # Opened only because the file is still flagged open for write (see trace._open_h5).
        # (or shares, in this process, a handle already opened that way).
        self.live = path is not None or bool(getattr(handle, "swmr_mode", False))

    def seconds_since_write(self) -> float:
        """Seconds since the file was last modified on disk."""
        import os
        import time

        try:
            return time.time() - os.path.getmtime(self._path or self._f.filename)
        except OSError:
            return float("inf")

    def _ds(self, path: str) -> Any:
        ds = self._datasets.get(path)
        if ds is None:
            ds = self._datasets[path] = self._f[path]
            if self.live and getattr(self._f, "swmr_mode", False):
                ds.refresh()  # another handle in this process may hold stale metadata
        return ds

    def exists(self, path: str) -> bool:
        return path.strip("/") in self._f if path.strip("/") else True

    def attrs(self, path: str = "") -> dict[str, Any]:
        obj = self._f[path] if path.strip("/") else self._f
        return {k: obj.attrs[k] for k in obj.attrs}

    def shape(self, path: str) -> tuple[int, ...]:
        return tuple(self._ds(path).shape)

    def read(self, path: str, sel: Any = ()) -> np.ndarray:
        return np.asarray(self._ds(path)[sel])

    def keys(self, path: str) -> list[str]:
        return list(self._f[path].keys()) if path in self._f else []

    def refresh(self) -> None:
        """Pick up rows a live writer appended since the last look (SWMR)."""
        if not self.live or not getattr(self._f, "swmr_mode", False):
            return
        for ds in self._datasets.values():
            ds.refresh()

    def close(self) -> None:
        self._datasets.clear()
        try:
            self._f.close()
        except Exception:  # noqa: BLE001 - closing a damaged file must not raise
            pass
