"""The trace reader: the one place that knows the HDF5 schema.

``open_trace(path)`` returns a ``Trace``: lazy, read-only, rank-aware access to a
recorded run. Detectors and the app ask it for numpy arrays and never open h5py
themselves. Unusable files raise one of ``analysis.errors``; a crashed or still
running run is read up to its last complete step with a warning.
"""

from __future__ import annotations

import glob
import os
import re
import socket
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from analysis import errors, shards
from analysis._store import (
    SCAN_ALL_BYTES,
    H5Store,
    MemoryStore,
    StoreError,
    check_global_heaps,
    check_links,
    decode,
    decode_json,
    raw_ranges,
    raw_ranges_cached,
)
from analysis._store import open_h5 as _h5_file
from recorders import schema as S

_RANK_RE = re.compile(r"^(?P<stem>.*)\.rank(?P<rank>\d+)(?P<ext>\.[^./]*)?$")
NO_STEP = "no recorded step (the run stopped before its first rec.step)"
MAX_STEP = 10**15  # a step index beyond this is not a count of rec.step calls
STALE_SECS = 30.0  # a live file untouched this long has lost its writer
REDUCE_ROWS = 4096  # rows per block of ``Trace.reduce_rows``
_ROW_GROUPS = (S.STEPS, S.PARAMS, S.MODULES, S.OUTPUTS, S.TARGETS, S.INPUTS)
_STATIC = {S.PARAM_NAMES, S.PARAM_MODULE, S.PARAM_NUMEL, S.PARAM_REQUIRES_GRAD,
           S.PARAM_IN_OPTIMIZER, S.PARAM_LOCAL_NUMEL, S.PARAM_SHARDED, S.MODULE_NAMES, S.MODULE_TYPES}


def rank_files(path: str) -> list[str]:
    """The files of one run: ``[path]``, or every DDP rank file beside it, in rank order."""
    m = _RANK_RE.match(path)
    if m:
        stem, ext = m["stem"], m["ext"] or ""
    elif os.path.exists(path):
        return [path]
    else:
        stem, dot, ext = path.rpartition(".")
        stem, ext = (stem, "." + ext) if dot and "/" not in ext else (path, "")
    found = []
    for candidate in glob.glob(glob.escape(stem) + ".rank*" + glob.escape(ext)):
        cm = _RANK_RE.match(candidate)
        if cm and cm["stem"] == stem and (cm["ext"] or "") == ext:
            found.append((int(cm["rank"]), candidate))
    if not found:
        if m and os.path.exists(path):
            return [path]
        raise errors.TraceNotFound(path)
    return [p for _, p in sorted(found)]


def _open_h5(path: str) -> H5Store:
    import h5py

    if not os.path.isfile(path):
        raise errors.TraceNotFound(path)
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise errors.TraceCorrupt(path, f"cannot read: {exc.strerror or exc}") from None
    if not is_h5:
        raise errors.NotHDF5(path)
    # Global heaps are searched before HDF5 reads any variable-length string: in a small file
    # byte by byte now; in a big one once it is open, outside the raw data of its numeric
    # datasets (searching gigabytes of numbers would cost seconds).
    small = os.path.getsize(path) <= SCAN_ALL_BYTES
    if small:
        _check_heaps(path)
    try:
        return _checked(path, H5Store(_h5_file(path)), heaps=not small)
    except (OSError, ValueError, KeyError) as exc:
        first = exc
    if "truncated" in str(first):
        raise errors.TraceCorrupt(path, _first_line(first))
    # Still flagged open for write: a live SWMR writer, or a writer that died. SWMR mode
    # skips the end-of-file check, so it is only tried after the plain open said why it failed;
    # its metadata re-reads are bounded (a damaged file would otherwise retry for ever).
    for kwargs in ({"swmr": True}, {"locking": False}):
        try:
            return _checked(path, H5Store(_h5_file(path, **kwargs), path=path), heaps=not small)
        except (OSError, ValueError, KeyError):
            pass
    if "already open for write" in str(first):
        raise errors.TraceCorrupt(path, f"{NO_STEP}, or its writer still has the file open")
    raise errors.TraceCorrupt(path, _first_line(first))


def _check_heaps(path: str, skip: list[tuple[int, int]] | tuple = ()) -> None:
    try:
        check_global_heaps(path, skip)
    except StoreError as exc:
        raise trace_error(path, exc) from None
    except OSError as exc:
        raise errors.TraceCorrupt(path, f"cannot read: {exc.strerror or exc}") from None


def _checked(path: str, store: H5Store, heaps: bool = False) -> H5Store:
    """Refuse links that point outside the file (datasets are checked when first opened); with
    ``heaps``, the global heaps outside the numeric datasets' raw data (``raw_ranges``)."""
    try:
        check_links(store._f)
        if heaps:
            _check_heaps(path, raw_ranges(store._f) if store.live else raw_ranges_cached(store._f, path))
    except StoreError as exc:
        store.close()
        raise trace_error(path, exc) from None
    except BaseException:
        store.close()
        raise
    return store


def trace_error(path: str, exc: BaseException) -> errors.TraceError:
    """Any failure while reading ``path`` as the ``TraceError`` it stands for."""
    if isinstance(exc, errors.TraceError):
        return exc
    if isinstance(exc, StoreError):
        kind = {"refused": errors.TraceRefused, "limit": errors.TraceLimit}.get(exc.kind, errors.TraceCorrupt)
        return kind(path, str(exc))
    if isinstance(exc, MemoryError):
        return errors.TraceLimit(path, "reading it ran out of memory")
    return errors.TraceCorrupt(path, _first_line(exc))


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "unreadable").strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _check_header(path: str, store: Any) -> None:
    attrs = store.attrs("")
    if decode(attrs.get(S.ATTR_FORMAT)) != S.FORMAT_NAME:
        raise errors.NotATrace(path)
    try:
        version = int(decode(attrs.get(S.ATTR_VERSION)))
    except (TypeError, ValueError):
        raise errors.TraceCorrupt(path, "format_version attribute missing or not a number") from None
    if version > max(S.SUPPORTED_VERSIONS):
        raise errors.TraceTooNew(path, version, max(S.SUPPORTED_VERSIONS))
    if version < min(S.SUPPORTED_VERSIONS):
        raise errors.TraceTooOld(path, version, min(S.SUPPORTED_VERSIONS))


def open_trace(path: str | os.PathLike[str]) -> Trace:
    """Open a trace (all DDP ranks of it) read-only; raises ``analysis.errors.TraceError``."""
    path = os.fspath(path)
    stores: list[Any] = []
    files = rank_files(path)
    try:
        for file in files:
            store = _open_h5(file)
            stores.append(store)
            _check_header(file, store)
        trace = Trace(stores, files)
        for r in range(trace.n_ranks):
            trace.rank(r).validate()  # the row datasets now, not in a detector
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on damaged files
        for store in stores:
            store.close()
        raise trace_error(path, exc) from None
    return trace


class Trace:
    """One recorded run. Accessors read rank ``self.rank_index``; ``rank(r)`` gives another.

    Arrays are ``(steps, …)`` with one row per recorded step (``self.steps`` holds the
    global step index of each row). Full-column reads are cached; ``refresh()`` drops
    the cache and picks up rows a live writer appended.
    """

    def __init__(self, stores: list[Any], paths: list[str], rank_index: int = 0) -> None:
        self._stores = stores
        self.paths = paths
        self.rank_index = rank_index
        self._src = stores[rank_index]
        self._cache: dict[Any, np.ndarray] = {}
        self._n: int | None = None
        self._status: dict[str, Any] | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        data: Mapping[str, np.ndarray],
        attrs: Mapping[str, Mapping[str, Any]] | None = None,
        path: str = "<memory>",
    ) -> Trace:
        """A trace over in-memory arrays keyed by schema paths (for tests and synthesis)."""
        attrs = {k: dict(v) for k, v in (attrs or {}).items()}
        root = attrs.setdefault("", {})
        root.setdefault(S.ATTR_FORMAT, S.FORMAT_NAME)
        root.setdefault(S.ATTR_VERSION, S.FORMAT_VERSION)
        root.setdefault(S.ATTR_CLOSED, 1)
        store = MemoryStore(data, attrs)
        _check_header(path, store)
        return cls([store], [path])

    def rank(self, r: int) -> Trace:
        """The same run seen from rank ``r``'s file."""
        return Trace(self._stores, self.paths, r)

    @property
    def n_ranks(self) -> int:
        return len(self._stores)

    @property
    def path(self) -> str:
        return self.paths[self.rank_index]

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._cache.clear()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- header and rows
    @cached_property
    def attrs(self) -> dict[str, Any]:
        return {k: decode(v) for k, v in self._src.attrs("").items()}

    @property
    def format_version(self) -> int:
        return int(self.attrs.get(S.ATTR_VERSION, 0))

    @property
    def status(self) -> dict[str, Any]:
        """The writer's status record (format 2; format 1: from the root attributes): counts
        complete on disk, ``closed_cleanly``, and ``stopped_at``/``reason`` when recording failed."""
        if self._status is None:
            self._status = self._read_status()
        return self._status

    def _read_status(self) -> dict[str, Any]:
        if not self._src.exists(S.STATUS):
            attrs = self._src.attrs("")
            written = decode(attrs.get(S.ATTR_STEPS_WRITTEN))
            # Format 1: a SWMR reader in another process does not see attribute updates, so
            # steps_written caps rows only in files not read live (0: never flushed, no cap).
            cap = written if isinstance(written, int) and written > 0 and not self._src.live else None
            return {"steps_written": cap, "closed_cleanly": bool(decode(attrs.get(S.ATTR_CLOSED, 0))),
                    "stopped_at": -1, "reason": ""}
        raw = self._src.read(S.STATUS)
        names = [n for n, _ in S.STATUS_FIELDS]
        if raw.shape != (1,) or raw.dtype.names is None or not set(names) <= set(raw.dtype.names):
            raise errors.TraceCorrupt(self.path, "the status record is malformed")
        rec = raw[0]
        out = {n: decode(rec[n]) for n in names}
        out["closed_cleanly"] = bool(out["closed_cleanly"])
        out["reason"] = str(out["reason"]).strip("\x00")
        for key in names[:5]:
            if not isinstance(out[key], int) or out[key] < 0:
                raise errors.TraceCorrupt(self.path, f"the status record's {key} is not a count")
        return out

    @property
    def closed_cleanly(self) -> bool:
        return bool(self.status["closed_cleanly"])

    @property
    def stopped(self) -> tuple[int, str] | None:
        """``(step, reason)`` when the recorder stopped early because writing failed."""
        st = self.status
        step = st.get("stopped_at", -1)
        return (int(step), str(st.get("reason", ""))) if isinstance(step, int) and step >= 0 else None

    @property
    def live(self) -> bool:
        """True when the file is open in SWMR mode and its writer has not closed it."""
        return bool(self._src.live) and not self.closed_cleanly

    def _row_datasets(self) -> list[str]:
        out = []
        for group in _ROW_GROUPS:
            if not self._src.exists(group):
                continue
            for key in self._src.keys(group):
                path = f"{group}/{key}"
                if path not in _STATIC and self._src.exists(path):
                    out.append(path)
        return out

    @property
    def n_steps(self) -> int:
        """Rows that are complete: the shortest row dataset, capped by the status record."""
        if self._n is None:
            if not self._src.exists(S.STEPS):
                raise errors.TraceCorrupt(self.path, NO_STEP)
            for need in (S.STEP, S.LOSS):
                if not self._src.exists(need):
                    raise errors.TraceCorrupt(self.path, f"dataset {need} is missing")
            n = min(self._src.shape(p)[0] if self._src.shape(p) else 0 for p in self._row_datasets())
            written = self.status.get("steps_written")
            if isinstance(written, int):
                n = min(n, written)
            if n == 0:
                raise errors.TraceCorrupt(self.path, "no complete step was flushed to disk")
            self._n = n
        return self._n

    def validate(self) -> None:
        """Raise ``TraceCorrupt`` unless the row index is a real one: integer steps, strictly
        increasing from ≥ 0, below ``MAX_STEP``; statistics shaped as their static indexes."""
        n = self.n_steps
        if self._src.dtype(S.STEP).kind not in "iu":
            raise errors.TraceCorrupt(self.path, f"{S.STEP} does not hold integers")
        steps = self.steps
        bad = np.flatnonzero(np.diff(steps) <= 0)
        if len(bad):
            raise errors.TraceCorrupt(self.path, f"{S.STEP} is not increasing (row {int(bad[0]) + 1}: "
                                                 f"{int(steps[bad[0] + 1])} after {int(steps[bad[0]])})")
        if steps[0] < 0 or steps[-1] > MAX_STEP:
            raise errors.TraceCorrupt(self.path, f"{S.STEP} holds {int(min(steps[0], 0) or steps[-1])}, "
                                                 "not a count of rec.step calls")
        for group, width in ((S.PARAMS, len(self.param_names)), (S.MODULES, len(self.module_names))):
            for stat in S.PARAM_STATS if group == S.PARAMS else S.MODULE_STATS:
                path = f"{group}/{stat}"
                if self.has(path) and tuple(self._src.shape(path)[1:]) != (width,):
                    raise errors.TraceCorrupt(self.path, f"{path} has shape {self._src.shape(path)}, "
                                                         f"not (rows, {width})")
        if self._src.shape(S.LOSS)[1:] not in ((), (1,)):
            raise errors.TraceCorrupt(self.path, f"{S.LOSS} is not one value per row")
        self.loss()  # readable: the one series every diagnosis needs
        self.meta  # noqa: B018 - the JSON attributes within their limits, now rather than in a detector
        assert n == self.n_steps

    @property
    def warnings(self) -> list[str]:
        """Non-fatal facts about the file a user should know (e.g. a crashed run)."""
        last = int(self.steps[-1]) if self.n_steps else 0
        stopped = self.stopped
        if stopped is not None:
            step, reason = stopped
            return [f"{self.path}: recording stopped at step {step} ({reason or 'writing failed'}); "
                    f"read {self.n_steps} steps up to step {last}"]
        if self.closed_cleanly:
            return []
        what = "is still being written" if self.writer_active else "ended without a clean close"
        return [f"{self.path}: run {what}; read {self.n_steps} steps up to step {last}"]

    @property
    def writer_active(self) -> bool:
        """Whether a writer is still at work: its recorded process is alive (same host), or,
        where that cannot be checked, the file was touched within ``STALE_SECS``."""
        if not self.live:
            return False
        env = self.meta.get("env") or {}
        pid, host = env.get("pid"), env.get("hostname")
        if isinstance(pid, int) and pid > 0 and host == socket.gethostname():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except OSError:
                return True
            return True
        return self._src.seconds_since_write() < STALE_SECS

    def refresh(self) -> bool:
        """Re-read a live file; True when new rows arrived."""
        before = self._n
        self._src.refresh()
        self._cache.clear()
        self._n = None
        self._status = None
        self.__dict__.pop("steps", None)
        return self.n_steps != before

    # ----------------------------------------------------------------- generic reads
    def has(self, path: str) -> bool:
        """Whether a group or dataset (schema path, e.g. ``"outputs"``) is in the file."""
        return self._src.exists(path)

    def _rows(self, path: str) -> np.ndarray:
        key = ("rows", path)
        if key not in self._cache:
            self._cache[key] = self._src.read(path, np.s_[: self.n_steps])
        return self._cache[key]

    def _static(self, path: str) -> list[Any]:
        key = ("static", path)
        if key not in self._cache:
            if not self._src.exists(path):
                self._cache[key] = np.asarray([])
            else:
                self._cache[key] = self._src.read(path)
        return [decode(v) for v in self._cache[key]]

    @cached_property
    def steps(self) -> np.ndarray:
        """``(N,)`` int64 global step index of each row."""
        return np.asarray(self._src.read(S.STEP, np.s_[: self.n_steps]), dtype=np.int64)

    def row_of(self, step: int) -> int:
        """Row of the last recorded step ≤ ``step`` (0 before the first)."""
        return max(int(np.searchsorted(self.steps, step, side="right")) - 1, 0)

    # ----------------------------------------------------------------- metadata
    @cached_property
    def meta(self) -> dict[str, Any]:
        """``model``, ``optimizer``, ``loss``, ``env``, ``options`` as parsed JSON (or None)."""
        raw = self._src.attrs(S.META) if self._src.exists(S.META) else {}
        return {key: decode_json(raw.get(key)) for key in S.META_KEYS}

    @cached_property
    def param_names(self) -> list[str]:
        return [str(v) for v in self._static(S.PARAM_NAMES)]

    @cached_property
    def param_info(self) -> list[dict[str, Any]]:
        """Per parameter: name, module, shape, numel, requires_grad, in_optimizer."""
        shapes = decode_json(self._src.attrs(S.PARAMS).get(S.PARAM_SHAPES_ATTR), []) or []
        modules = self._static(S.PARAM_MODULE)
        numel = self._static(S.PARAM_NUMEL)
        grad = self._static(S.PARAM_REQUIRES_GRAD)
        in_opt = self._static(S.PARAM_IN_OPTIMIZER)

        def at(seq: list[Any], i: int, default: Any) -> Any:
            return seq[i] if i < len(seq) else default

        return [
            {
                "name": name,
                "module": str(at(modules, i, "")),
                "shape": tuple(at(shapes, i, ())),
                "numel": int(at(numel, i, 0)),
                "requires_grad": bool(at(grad, i, True)),
                "in_optimizer": bool(at(in_opt, i, True)),
            }
            for i, name in enumerate(self.param_names)
        ]

    @cached_property
    def module_names(self) -> list[str]:
        return [str(v) for v in self._static(S.MODULE_NAMES)]

    @cached_property
    def module_types(self) -> list[str]:
        return [str(v) for v in self._static(S.MODULE_TYPES)]

    @cached_property
    def module_info(self) -> dict[str, dict[str, Any]]:
        """Every module of the model tree by name: ``type``, ``args``, ``extra_repr``, ``params``."""
        model = self.meta.get("model") or {}
        return {str(m.get("name", "")): m for m in model.get("modules", []) if isinstance(m, dict)}

    # ----------------------------------------------------------------- per-step series
    def loss(self) -> np.ndarray:
        """``(N,)`` float64 loss per row."""
        return self._rows(S.LOSS).astype(np.float64, copy=False)

    def time(self) -> np.ndarray:
        return self._rows(S.TIME) if self.has(S.TIME) else np.full(self.n_steps, np.nan)

    def lr(self) -> np.ndarray:
        """``(N, G)`` learning rate per optimizer param group (``(N, 0)`` if not recorded)."""
        if not self.has(S.LR):
            return np.zeros((self.n_steps, 0))
        lr = self._rows(S.LR)
        return lr.reshape(len(lr), -1)

    def measured(self, group: str = "params") -> np.ndarray:
        """``(N,)`` bool: rows that measured ``group`` (``"params"``, ``"modules"`` or
        ``"update"``; see ``steps/measured``). Rows that did not hold NaN for that group,
        never an interpolated value. A trace written before the cadence existed measured
        every row."""
        bit = S.MEASURED_GROUPS[group]
        if not self.has(S.MEASURED):
            return np.ones(self.n_steps, dtype=bool)
        return (self._rows(S.MEASURED).astype(np.int64) & bit) > 0

    def summary_levels(self) -> list[int]:
        """Block sizes (steps) of the ``/summary`` levels in the file, finest first."""
        if not self.has(S.SUMMARY):
            return []
        sizes = [int(k[1:]) for k in self._src.keys(S.SUMMARY) if k.startswith("b") and k[1:].isdigit()]
        return sorted(sizes)

    def summary(self, series: str, max_blocks: int = 1000) -> tuple[np.ndarray, np.ndarray] | None:
        """An overview of ``series`` (``schema.SUMMARY_SCALARS`` or ``"params/g_norm"``, …):
        ``(block first steps (K,), [min, max, mean] (K, …, 3))`` from the finest summary level
        with at most ``max_blocks`` blocks (else the coarsest). None without a summary."""
        levels = self.summary_levels()
        if not levels:
            return None
        counts = {b: self._count(f"{S.summary_level(b)}/step") for b in levels}
        pick = next((b for b in levels if counts[b] <= max_blocks), levels[-1])
        grp = S.summary_level(pick)
        group, _, stat = series.rpartition("/")
        names = {"": S.SUMMARY_SCALARS, S.PARAMS: S.SUMMARY_PARAM_STATS, S.MODULES: S.SUMMARY_MODULE_STATS}
        path = f"{grp}/{group or 'series'}"
        if stat not in names.get(group, ()) or not self.has(path):
            raise KeyError(f"no summary series {series!r}")
        n = min(counts[pick], self._src.shape(path)[0])
        steps = self._src.read(f"{grp}/step", np.s_[:n]).astype(np.int64)
        # Blocks written after the last flush that succeeded may be zero-filled on disk: keep the
        # increasing run of blocks that start within the complete rows.
        bad = np.flatnonzero((np.diff(steps, prepend=-1) <= 0) | (steps > int(self.steps[-1])))
        n = int(bad[0]) if len(bad) else n
        return steps[:n], self._src.read(path, np.s_[:n, names[group].index(stat)])

    def grad_carry(self) -> np.ndarray:
        return self._rows(S.GRAD_CARRY) if self.has(S.GRAD_CARRY) else np.full(self.n_steps, np.nan)

    def param_stat(self, stat: str) -> np.ndarray:
        """``(N, P)`` float32 statistic per row and parameter (``schema.PARAM_STATS``)."""
        if stat not in S.PARAM_STATS:
            raise KeyError(f"unknown parameter statistic {stat!r}")
        path = f"{S.PARAMS}/{stat}"
        if not self.has(path):
            return np.full((self.n_steps, len(self.param_names)), np.nan, np.float32)
        if self.sharded.any() and self.n_ranks > 1:
            return self._merged_param_stat(stat)
        return self._rows(path)

    def param_rows(self, stat: str, rows: np.ndarray) -> np.ndarray:
        """``param_stat(stat)[rows]`` for sorted row indices, reading only the blocks that hold them
        (the column is not cached)."""
        path = f"{S.PARAMS}/{stat}"
        if stat in S.PARAM_STATS and not self.has(path):  # as param_stat's NaN, only the rows asked for
            return np.full((len(np.arange(self.n_steps)[rows]), len(self.param_names)), np.nan, np.float32)
        if stat not in S.PARAM_STATS or (self.sharded.any() and self.n_ranks > 1):
            return self.param_stat(stat)[rows]
        return self._rows_at(path, rows)

    def module_rows(self, stat: str, rows: np.ndarray, col: int | None = None) -> np.ndarray:
        """``module_stat(stat)[rows]`` (of column ``col`` only, if given) for sorted row indices,
        reading only the blocks that hold them."""
        path = f"{S.MODULES}/{stat}"
        if stat in S.MODULE_STATS and not self.has(path):  # as module_stat's NaN, only the rows asked for
            k = len(np.arange(self.n_steps)[rows])
            return np.full((k,) if col is not None else (k, len(self.module_names)), np.nan, np.float32)
        if stat not in S.MODULE_STATS:
            a = self.module_stat(stat)
            return (a if col is None else a[:, col])[rows]
        return self._rows_at(path, rows, () if col is None else (col,))

    def reduce_rows(self, group: str, stat: str, fn: Any, key: str) -> np.ndarray:
        """``fn`` of a ``params``/``modules`` statistic, ``fn`` mapping ``(n, K)`` rows to ``(n,)``
        row by row (``key`` names it): applied to blocks of ``REDUCE_ROWS`` rows, so the whole
        column is never held (unless it is cached already). Kept."""
        ck = ("reduce", group, stat, key)
        if ck in self._cache:
            return self._cache[ck]
        path = f"{group}/{stat}"
        full = self._cache.get(("rows", path))
        if full is not None or not self.has(path) or (group == S.PARAMS and self.sharded.any()
                                                      and self.n_ranks > 1):
            whole = full if full is not None else (
                self.param_stat(stat) if group == S.PARAMS else self.module_stat(stat))
            out = np.asarray(fn(whole))
        else:
            n = self.n_steps
            parts = [np.asarray(fn(self._src.read(path, np.s_[a:min(a + REDUCE_ROWS, n)])))
                     for a in range(0, n, REDUCE_ROWS)]
            out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._cache[ck] = out
        return out

    def _rows_at(self, path: str, rows: np.ndarray, rest: tuple = ()) -> np.ndarray:
        rows = np.asarray(rows)
        full = self._cache.get(("rows", path))
        if full is not None or rows.dtype.kind not in "iu" or rows.ndim != 1 or (
                len(rows) and (rows[0] < 0 or rows[-1] >= self.n_steps or np.any(np.diff(rows) < 0))):
            return (full if full is not None else self._rows(path))[(rows, *rest)]
        return self._src.read_rows(path, rows, rest)

    def batch_rows(self, group: str, field: str, rows: np.ndarray) -> np.ndarray:
        """``batch(group, field)[rows]`` for sorted row indices, reading only the blocks that hold them."""
        path = f"{group}/{field}"
        if not self.has(path):
            raise KeyError(f"trace has no {path}")
        return self._rows_at(path, rows)

    @cached_property
    def sharded(self) -> np.ndarray:
        """``(P,)`` bool: parameters sharded across ranks (FSDP); their statistics read merged."""
        flags = self._static(S.PARAM_SHARDED)
        out = np.zeros(len(self.param_names), dtype=bool)
        out[: len(flags)] = np.asarray(flags, dtype=bool)[: len(out)]
        return out

    def _merged_param_stat(self, stat: str) -> np.ndarray:
        """Sharded parameters' statistic over every rank's shard (``analysis.shards``); the
        others (replicated) are this rank's own. Rows past the shortest rank's are NaN."""
        key = ("merged", stat)
        if key in self._cache:
            return self._cache[key]
        views = [self if r == self.rank_index else self.rank(r) for r in range(self.n_ranks)]
        n = min(v.n_steps for v in views)
        raw = {name: np.stack([v._rows(f"{S.PARAMS}/{name}")[:n] for v in views])
               for name in shards.NEEDS[stat]}
        local = np.stack([np.asarray(v._static(S.PARAM_LOCAL_NUMEL), dtype=np.int64) for v in views])
        out = np.array(self._rows(f"{S.PARAMS}/{stat}"), dtype=np.float32, copy=True)
        cols = self.sharded
        out[:, cols] = np.nan
        out[:n, cols] = shards.merge(stat, {k: v[:, :, cols] for k, v in raw.items()}, local[:, cols])
        self._cache[key] = out
        return out

    def module_stat(self, stat: str) -> np.ndarray:
        """``(N, M)`` float32 activation statistic per row and leaf module."""
        if stat not in S.MODULE_STATS:
            raise KeyError(f"unknown module statistic {stat!r}")
        path = f"{S.MODULES}/{stat}"
        if not self.has(path):
            return np.full((self.n_steps, len(self.module_names)), np.nan, np.float32)
        return self._rows(path)

    def _block(self, path: str, rows: slice, cols: slice | None = None) -> np.ndarray:
        """Uncached rows (clipped to the complete ones) of a row dataset."""
        stop = min(rows.stop if rows.stop is not None else self.n_steps, self.n_steps)
        rows = slice(rows.start, stop, rows.step)
        return self._src.read(path, np.s_[rows] if cols is None else np.s_[rows, cols])

    def stat_block(self, group: str, stat: str, rows: slice, cols: slice = slice(None)) -> np.ndarray:
        """An uncached ``rows × cols`` block of a ``params``/``modules`` statistic (for big heatmaps)."""
        if group == S.PARAMS and self.n_ranks > 1 and self.sharded.any():
            return self.param_stat(stat)[rows, cols]
        return self._block(f"{group}/{stat}", rows, cols)

    def batch_block(self, group: str, field: str, rows: slice) -> np.ndarray:
        """An uncached block of rows of a batch field (``outputs``/``targets``/``inputs``)."""
        if not self.has(f"{group}/{field}"):
            raise KeyError(f"trace has no {group}/{field}")
        return self._block(f"{group}/{field}", rows)

    # ----------------------------------------------------------------- batch summaries
    def batch(self, group: str, field: str) -> np.ndarray:
        """A field of ``outputs``, ``targets`` or ``inputs``, e.g. ``batch("outputs", "sample")``."""
        path = f"{group}/{field}"
        if not self.has(path):
            raise KeyError(f"trace has no {path}")
        return self._rows(path)

    def batch_row(self, group: str, field: str, row: int) -> np.ndarray:
        """One row of a batch field, read without caching the whole ``(N, …)`` dataset."""
        path = f"{group}/{field}"
        if not self.has(path):
            raise KeyError(f"trace has no {path}")
        key = ("rows", path)
        if key in self._cache:
            return self._cache[key][row]
        return self._src.read(path, int(np.clip(row, 0, self.n_steps - 1)))

    def batch_attrs(self, group: str) -> dict[str, Any]:
        """Attributes of a batch group: ``shape``, ``dtype``, ``columns``, ``kind``, …"""
        if not self.has(group):
            return {}
        key = ("attrs", group)
        if key not in self._cache:
            self._cache[key] = self._batch_attrs(group)  # type: ignore[assignment]
        return dict(self._cache[key])  # type: ignore[arg-type]

    def _batch_attrs(self, group: str) -> dict[str, Any]:
        out = {}
        for key, value in self._src.attrs(group).items():
            value = decode(value)
            if key == "shape" and isinstance(value, str):
                value = decode_json(value, value)
            out[key] = value
        return out

    # ----------------------------------------------------------------- logged scalars
    def scalar_names(self) -> list[str]:
        if not self.has(S.SCALAR_NAMES):
            return []
        return [n for n in (str(decode(v)) for v in self._src.read(S.SCALAR_NAMES)) if n]

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one logged scalar."""
        names = self.scalar_names()
        if name not in names:
            raise KeyError(f"no logged scalar {name!r}")
        n = min(self._count(p) for p in (S.SCALAR_STEP, S.SCALAR_ID, S.SCALAR_VALUE))
        ids = self._src.read(S.SCALAR_ID, np.s_[:n])
        mask = ids == names.index(name)
        return (self._src.read(S.SCALAR_STEP, np.s_[:n])[mask].astype(np.int64),
                self._src.read(S.SCALAR_VALUE, np.s_[:n])[mask].astype(np.float64))

    # ----------------------------------------------------------------- snapshots
    def _count(self, path: str) -> int:
        """Entries of a growable dataset outside the row index, capped by the status record."""
        if not self.has(path):
            return 0
        n = self._src.shape(path)[0] if self._src.shape(path) else 0
        for key, paths in S.STATUS_COUNTS.items():
            cap = self.status.get(key)
            if path in paths and isinstance(cap, int):
                n = min(n, cap)
        return n

    def _snap_count(self) -> int:
        """Snapshots to read: those counted complete; in a run that did not close cleanly, only
        those within its complete rows (none beyond the last row a reader can see)."""
        n = self._count(S.SNAP_STEP)
        if n and not self.closed_cleanly:
            every = (self.meta.get("options") or {}).get("every", 1)
            every = every if isinstance(every, int) and every > 0 else 1
            steps = self._src.read(S.SNAP_STEP, np.s_[:n]).astype(np.int64)
            beyond = np.flatnonzero(steps > int(self.steps[-1]) + every - 1)
            n = int(beyond[0]) if len(beyond) else n
        return n

    def snapshot_steps(self) -> np.ndarray:
        """``(S,)`` step of each full-tensor snapshot."""
        n = self._snap_count()
        return self._src.read(S.SNAP_STEP, np.s_[:n]).astype(np.int64) if n else np.zeros(0, int)

    def snapshot_reasons(self) -> list[str]:
        n = min(self._count(S.SNAP_REASON), self._snap_count())
        codes = self._src.read(S.SNAP_REASON, np.s_[:n]) if n else []
        return [S.SNAP_REASONS.get(int(c), "unknown") for c in codes]

    def nearest_snapshot(self, step: int) -> int | None:
        """Index of the last snapshot at or before ``step`` (the first one if none)."""
        steps = self.snapshot_steps()
        if not len(steps):
            return None
        return max(int(np.searchsorted(steps, step, side="right")) - 1, 0)

    def snapshot(self, kind: str, param: int, index: int) -> np.ndarray | None:
        """Reduced tensor of parameter ``param`` (kind ``weight`` or ``grad``) at a snapshot."""
        path = f"{S.SNAPSHOTS}/{kind}/{S.param_key(param)}"
        if not self.has(path) or not 0 <= index < min(self._src.shape(path)[0], self._snap_count()):
            return None
        return self._src.read(path, index)

    def snapshot_layout(self, kind: str, param: int) -> dict[str, Any]:
        """``full_shape`` and ``stride`` of a parameter's reduced snapshot."""
        path = f"{S.SNAPSHOTS}/{kind}/{S.param_key(param)}"
        if not self.has(path):
            return {}
        return {k: decode_json(v, decode(v)) for k, v in self._src.attrs(path).items()}

    # ----------------------------------------------------------------- histograms, units
    def hist_steps(self) -> np.ndarray:
        n = self._count(S.HIST_STEP)
        return self._src.read(S.HIST_STEP, np.s_[:n]).astype(np.int64) if n else np.zeros(0, int)

    def hist(self, kind: str, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(counts (H, B), ranges (H, 2))`` of one parameter/module over all histogram rows."""
        path = f"{S.HIST}/{kind}"
        if not self.has(path):
            return None
        n = min(len(self.hist_steps()), self._src.shape(path)[0])
        return (self._src.read(path, np.s_[:n, index]),
                self._src.read(f"{path}_range", np.s_[:n, index]))

    def unit_steps(self) -> np.ndarray:
        n = self._count(S.UNIT_STEP)
        return self._src.read(S.UNIT_STEP, np.s_[:n]).astype(np.int64) if n else np.zeros(0, int)

    def unit_alive(self, module: int) -> np.ndarray | None:
        """``(W, U)`` uint8: unit u of leaf module ``module`` fired at least once in window w."""
        path = f"{S.UNIT_ALIVE}/{S.module_key(module)}"
        if not self.has(path):
            return None
        return self._src.read(path, np.s_[: len(self.unit_steps())])
