"""Storage backends behind ``Trace``: an HDF5 file, or arrays in memory.

Only this module and ``analysis.trace`` touch h5py. The in-memory store lets
detectors and views be tested on synthetic arrays with the same ``Trace`` API.
"""

from __future__ import annotations

import functools
import json
import operator
import os
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

    def dtype(self, path: str) -> np.dtype:
        return self.data[path.strip("/")].dtype

    def read(self, path: str, sel: Any = ()) -> np.ndarray:
        return np.asarray(self.data[path.strip("/")][sel])

    def read_rows(self, path: str, rows: np.ndarray, rest: tuple = ()) -> np.ndarray:
        """Rows ``rows`` (sorted indices) of a dataset, then ``rest`` of the other axes."""
        return np.asarray(self.data[path.strip("/")][(np.asarray(rows, dtype=np.int64), *rest)])

    def read_blocks(self, path: str, start: int, stride: int, count: int, block: int) -> np.ndarray:
        """``count`` runs of ``block`` rows, every ``stride`` rows from ``start``."""
        rows = (start + stride * np.arange(count)[:, None] + np.arange(block)[None, :]).ravel()
        return self.read_rows(path, rows)

    def keys(self, path: str) -> list[str]:
        prefix = path.strip("/") + "/"
        names = {k[len(prefix) :].split("/")[0] for k in self.data if k.startswith(prefix)}
        return sorted(names)

    def refresh(self) -> None:
        """Nothing to re-read in memory."""

    def close(self) -> None:
        """Nothing to release."""


# Sane bounds on what a (possibly hostile) file can make the reader do; see docs/trace-format.md.
MAX_LINKS = 1_000_000  # links in the file
MAX_CHUNK_BYTES = 64 << 20  # one chunk, decompressed
MAX_ATTR_BYTES = 16 << 20  # one attribute (the model's JSON included)
FILTERED_FACTOR = 64  # a compressed read may inflate to this many times the file's size
SLACK_BYTES = 1 << 20
READ_ATTEMPTS = 8  # SWMR re-reads of metadata failing its checksum (HDF5's 100 sleep ~forever)
ALLOWED_FILTERS = (1, 2, 3, 32000, 32001, 32004, 32015)  # deflate, shuffle, fletcher32, lzf, blosc, lz4, zstd
STRING_DATASETS = frozenset(
    ("params/names", "params/module", "modules/names", "modules/types", "scalars/names")
)


class StoreError(Exception):
    """Raised by the store; ``kind`` is ``"refused"``, ``"limit"`` or ``"corrupt"`` (see trace.py)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@functools.lru_cache(maxsize=1)
def _read_attempts_fn() -> Any:
    """``H5Pset_metadata_read_attempts`` of the libhdf5 h5py loaded (h5py does not wrap it)."""
    import ctypes

    import h5py  # noqa: F401 - loads libhdf5 into the process

    libs: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({ln.split()[-1] for ln in maps
                           if "libhdf5" in ln and "_hl" not in ln and ".so" in ln})
    except OSError:
        pass
    for lib in [*libs, None]:
        try:
            fn = ctypes.CDLL(lib).H5Pset_metadata_read_attempts
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    return None


def _set_read_attempts(fapl: Any, attempts: int) -> None:
    fn = _read_attempts_fn()
    if fn is not None:
        fn(fapl.id, attempts)


def open_h5(path: str, swmr: bool = False, locking: bool = True) -> Any:
    """``h5py.File(path, "r")`` with bounded SWMR retries (a damaged file fails at once)."""
    import h5py

    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    fapl.set_file_locking(locking, True)
    flags = h5py.h5f.ACC_RDONLY
    if swmr:
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        _set_read_attempts(fapl, READ_ATTEMPTS)
        flags |= h5py.h5f.ACC_SWMR_READ
    fid = h5py.h5f.open(os.fsencode(path), flags, fapl=fapl)
    return h5py.File(fid)


SCAN_ALL_BYTES = 256 << 20  # files up to this size are searched for global heaps byte by byte
SKIP_MIN_BYTES = 64 << 10  # raw-data ranges shorter than this are searched anyway (fewer reads)
ROWS_BLOCK = 4096  # rows per block of a scattered row read (``H5Store.read_rows``)


def check_global_heaps(path: str, skip: list[tuple[int, int]] | tuple = ()) -> None:
    """Refuse a global heap collection (where HDF5 keeps variable-length strings) that HDF5 would
    parse for ever: an object whose stored size does not advance the parser (a free-space entry
    of size 0 loops ``H5HG__cache_heap_deserialize``). Walks every ``GCOL`` the file holds outside
    the byte ranges ``skip`` (raw data of numeric datasets: see ``raw_ranges``).

    Plain reads, not ``mmap``: a mapped file that shrinks, or a hole on a full tmpfs, is a SIGBUS.
    """
    work = bytearray(8 << 20)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = 0
        for a, b in sorted(skip):
            if b - a < SKIP_MIN_BYTES or a < start:
                continue
            _scan_heaps(fh, start, a, work)
            start = max(start, b)
        _scan_heaps(fh, start, size, work)


def _scan_heaps(fh: Any, start: int, stop: int, work: bytearray) -> None:
    """Walk every ``GCOL`` signature that begins in ``[start, stop)``, reading through ``work``
    (one buffer for the whole search: no fresh memory per block)."""
    end = stop + 16  # the header of a signature just before ``stop``
    fh.seek(start)
    offset, pos, have = start, start, 0  # file offset of work[0], next read, valid bytes
    while True:
        want = max(0, min(len(work) - have, end - pos))
        got = fh.readinto(memoryview(work)[have:have + want]) if want else 0
        pos, have = pos + got, have + got
        cutoff = min(have - 19 if got else have, stop - offset)  # later signatures: next round, whole
        limit = min(cutoff + 3, have)
        at = work.find(b"GCOL", 0, limit)
        while 0 <= at < cutoff:
            if at + 16 <= have and work[at + 4] == 1:
                size = int.from_bytes(work[at + 8:at + 16], "little")
                if size >= 4096:
                    _walk_heap(fh, offset + at, size)
            at = work.find(b"GCOL", at + 4, limit)
        if not got:
            return
        cut = max(cutoff, 0)
        work[:have - cut] = work[cut:have]
        offset, have = offset + cut, have - cut


_OFFSET = operator.attrgetter("byte_offset")
_SIZE = operator.attrgetter("size")
_RANGES: dict[tuple[int, ...], list[tuple[int, int]]] = {}


def file_key(path: str) -> tuple[int, ...]:
    """What identifies one version of a file on disk: device, inode, size, change and modify times."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def raw_ranges_cached(handle: Any, path: str) -> list[tuple[int, int]]:
    """``raw_ranges`` of a file not being written, kept for the same version of the file (an app
    opens a trace for its views and again for the analysis)."""
    key = file_key(path)
    hit = _RANGES.get(key)
    if hit is None:
        hit = raw_ranges(handle)
        if len(_RANGES) >= 16:
            _RANGES.pop(next(iter(_RANGES)))
        if file_key(path) == key:  # unchanged while it was walked
            _RANGES[key] = hit
    return hit


def raw_ranges(handle: Any, min_bytes: int = 1 << 20) -> list[tuple[int, int]]:
    """Byte ranges of the raw data of the numeric datasets of at least ``min_bytes`` in an open file
    (chunks from the chunk index, contiguous storage from its offset): the bytes HDF5 only ever
    reads as numbers, which ``check_global_heaps`` need not search. Anything unusual (virtual or
    external storage, an index that cannot be walked) leaves that dataset out: it is searched."""
    import h5py

    out: list[np.ndarray] = []

    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "iufb":
            return
        dsid = obj.id
        try:
            dcpl = dsid.get_create_plist()
            if dcpl.get_external_count() or dsid.get_storage_size() < min_bytes:
                return
            layout = dcpl.get_layout()
            if layout == h5py.h5d.CONTIGUOUS:
                off = dsid.get_offset()
                if off is not None:
                    out.append(np.array([[off, off + dsid.get_storage_size()]], np.int64))
            elif layout == h5py.h5d.CHUNKED:
                found: list[Any] = []
                dsid.chunk_iter(found.append)  # StoreInfo records (no Python-level callback)
                starts = np.fromiter(map(_OFFSET, found), np.int64, len(found))
                sizes = np.fromiter(map(_SIZE, found), np.int64, len(found))
                out.append(np.c_[starts, starts + sizes])
        except Exception:  # noqa: BLE001 - a dataset whose layout cannot be read is searched
            return

    handle.visititems(visit)
    return _merged(np.concatenate(out) if out else np.zeros((0, 2), np.int64))


def _merged(ranges: np.ndarray) -> list[tuple[int, int]]:
    """``(k, 2)`` ``[start, stop)`` ranges sorted, touching or overlapping ones joined."""
    if not len(ranges):
        return []
    r = ranges[np.argsort(ranges[:, 0], kind="stable")]
    reach = np.maximum.accumulate(r[:, 1])
    new = np.r_[True, r[1:, 0] > reach[:-1]]
    starts = r[new, 0]
    stops = reach[np.r_[np.flatnonzero(new)[1:] - 1, len(r) - 1]]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _walk_heap(fh: Any, start: int, size: int) -> None:
    import struct

    here = fh.tell()
    fh.seek(start)
    heap = fh.read(min(size, 1 << 26))
    fh.seek(here)
    end = len(heap)
    p = 16
    while p < size:
        if p + 16 > size or p + 16 > end:
            return  # the tail too small for an object header: free space, as HDF5 reads it
        idx = struct.unpack_from("<H", heap, p)[0]
        length = struct.unpack_from("<Q", heap, p + 8)[0]
        need = 16 + ((length + 7) & ~7) if idx > 0 else length
        if need == 0:
            raise StoreError("corrupt", f"a global heap at byte {start} is damaged (an object of size 0)")
        p += need


def check_links(handle: Any) -> None:
    """Refuse soft, external and user-defined links; bound the number of links."""
    import h5py

    seen = [0]
    bad: list[str] = []

    def visit(name: bytes, info: Any) -> Any:
        seen[0] += 1
        if info.type != h5py.h5l.TYPE_HARD:
            kind = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}
            bad.append(f"{name.decode('utf-8', 'replace')} is {kind.get(info.type, 'a user-defined link')}")
            return 1
        return 1 if seen[0] > MAX_LINKS else None

    handle.id.links.visit(visit, info=True)
    if bad:
        raise StoreError("refused", bad[0])
    if seen[0] > MAX_LINKS:
        raise StoreError("limit", f"more than {MAX_LINKS:,} links (limit)")


def check_dataset(ds: Any, path: str) -> None:
    """Refuse virtual datasets, external raw storage, unknown filters, oversized chunks, bad types."""
    import h5py

    dcpl = ds.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        raise StoreError("refused", f"{path} is a virtual dataset")
    if dcpl.get_external_count() > 0:
        raise StoreError("refused", f"{path} keeps its data in an external file")
    for i in range(dcpl.get_nfilters()):
        code = dcpl.get_filter(i)[0]
        if code not in ALLOWED_FILTERS:
            raise StoreError("refused", f"{path} uses the unknown HDF5 filter {code}")
    chunks = ds.chunks
    if chunks is not None:
        chunk_bytes = int(np.prod(chunks, dtype=np.float64)) * ds.dtype.itemsize
        if chunk_bytes > MAX_CHUNK_BYTES:
            raise StoreError("limit", f"{path} has chunks of {_size(chunk_bytes)}, over the "
                                      f"{_size(MAX_CHUNK_BYTES)} limit")
    dt = ds.dtype
    if path.strip("/") == "status":
        if dt.names is None:
            raise StoreError("corrupt", "status is not a record")
        return
    text = path.strip("/") in STRING_DATASETS
    numeric = dt.kind == "b" or (dt.kind in "iuf" and h5py.check_enum_dtype(dt) is None)
    ok = dt.kind in "OSU" if text else numeric
    if not ok:
        want = "strings" if text else "numbers"
        raise StoreError("corrupt", f"{path} holds {_kind_name(dt)} where a trace stores {want}")


def _kind_name(dt: np.dtype) -> str:
    import h5py

    if h5py.check_enum_dtype(dt) is not None:
        return "an enum"
    if dt.names is not None:
        return "compound records"
    return {"c": "complex numbers", "S": "strings", "U": "strings", "O": "strings or objects",
            "V": "opaque bytes", "M": "dates", "m": "durations"}.get(dt.kind, f"dtype {dt}")


def selection_bytes(shape: tuple[int, ...], itemsize: int, sel: Any) -> int:
    """Bytes a selection of a dataset of ``shape`` reads (computed on a zero-stride view)."""
    view = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=shape, strides=(0,) * len(shape))
    return int(view[sel].size) * itemsize


class H5Store:
    """A read-only h5py file; datasets opened lazily and refreshed for live (SWMR) files.

    Every dataset is checked when first opened (``check_dataset``) and every read is bounded:
    an uncompressed dataset cannot yield more bytes than it stores, a compressed one not more
    than ``FILTERED_FACTOR`` times the file's size; attributes are at most ``MAX_ATTR_BYTES``.
    """

    def __init__(self, handle: Any, path: str | None = None) -> None:
        self._f = handle
        self._path = path
        self._datasets: dict[str, Any] = {}
        self._exists: dict[str, bool] = {}  # objects are never removed; a live writer adds none after row 0
        # Opened only because the file is still flagged open for write (see trace._open_h5).
        # (or shares, in this process, a handle already opened that way).
        self.live = path is not None or bool(getattr(handle, "swmr_mode", False))
        try:
            self.file_bytes = os.path.getsize(path or handle.filename)
        except OSError:
            self.file_bytes = 0

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
            import h5py

            ds = self._f[path]
            if not isinstance(ds, h5py.Dataset):
                raise StoreError("corrupt", f"{path} is a group where a trace has a dataset")
            check_dataset(ds, path)
            if self.live and getattr(self._f, "swmr_mode", False):
                ds.refresh()  # another handle in this process may hold stale metadata
            self._datasets[path] = ds
        return ds

    def _check_read(self, ds: Any, path: str, sel: Any) -> None:
        want = selection_bytes(ds.shape, ds.dtype.itemsize, sel)
        if want <= SLACK_BYTES:
            return
        if ds.id.get_create_plist().get_nfilters():
            cap = FILTERED_FACTOR * max(self.file_bytes, 1)
            what = f"{FILTERED_FACTOR}× the file's {_size(self.file_bytes)}"
        else:
            cap = ds.id.get_storage_size() + SLACK_BYTES
            what = f"the {_size(ds.id.get_storage_size())} the file stores for it"
        if want > cap:
            raise StoreError("limit", f"{path}: reading {_size(want)} would exceed {what} (limit)")

    def exists(self, path: str) -> bool:
        key = path.strip("/")
        if not key:
            return True
        hit = self._exists.get(key)
        if hit is None:
            hit = self._exists[key] = key in self._f
        return hit

    def attrs(self, path: str = "") -> dict[str, Any]:
        obj = self._f[path] if path.strip("/") else self._f
        out = {}
        for key in obj.attrs:
            aid = obj.attrs.get_id(key)
            declared = int(np.prod(aid.shape or (), dtype=np.float64)) * aid.dtype.itemsize
            if max(declared, aid.get_storage_size()) > MAX_ATTR_BYTES:
                raise StoreError("limit", f"attribute {key!r} of /{path.strip('/')} is "
                                          f"{_size(declared)}, over the {_size(MAX_ATTR_BYTES)} limit")
            value = obj.attrs[key]
            if isinstance(value, (str, bytes)) and len(value) > MAX_ATTR_BYTES:
                raise StoreError("limit", f"attribute {key!r} of /{path.strip('/')} is "
                                          f"{_size(len(value))}, over the {_size(MAX_ATTR_BYTES)} limit")
            out[key] = value
        return out

    def shape(self, path: str) -> tuple[int, ...]:
        return tuple(self._ds(path).shape)

    def dtype(self, path: str) -> np.dtype:
        return self._ds(path).dtype

    def read(self, path: str, sel: Any = ()) -> np.ndarray:
        ds = self._ds(path)
        self._check_read(ds, path, sel)
        return np.asarray(ds[sel])

    def read_blocks(self, path: str, start: int, stride: int, count: int, block: int) -> np.ndarray:
        """``count`` runs of ``block`` rows, every ``stride`` rows from ``start``, in one HDF5 read
        (one hyperslab: far cheaper than a read per run for a 1-D dataset)."""
        import h5py

        ds = self._ds(path)
        self._check_read(ds, path, np.s_[start:start + stride * (count - 1) + block])
        return np.asarray(ds[h5py.MultiBlockSlice(start=start, stride=stride, count=count, block=block)])

    def read_into(self, path: str, sel: Any, out: np.ndarray) -> None:
        """``out[...] = read(path, sel)``, straight into ``out`` when it is one contiguous block."""
        ds = self._ds(path)
        self._check_read(ds, path, sel)
        if out.flags.c_contiguous and out.dtype == ds.dtype and all(isinstance(s, slice) for s in sel):
            ds.read_direct(out, source_sel=sel)
        else:
            out[...] = ds[sel]

    def read_rows(self, path: str, rows: np.ndarray, rest: tuple = ()) -> np.ndarray:
        """Rows ``rows`` (sorted indices) of a dataset, then ``rest`` of the other axes: read as
        contiguous blocks of at most ``ROWS_BLOCK`` rows that cover them (HDF5 reads a scattered
        selection row by row, far slower than the block; each block is bounded as ``read`` is)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return self.read(path, (slice(0, 0), *rest))
        starts = [0]
        while starts[-1] < len(rows):
            starts.append(int(np.searchsorted(rows, rows[starts[-1]] + ROWS_BLOCK)))
        parts = []
        for i, j in zip(starts[:-1], starts[1:], strict=True):
            a = int(rows[i])
            block = self.read(path, (slice(a, int(rows[j - 1]) + 1), *rest))
            parts.append(block if j - i == len(block) else block[rows[i:j] - a])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def keys(self, path: str) -> list[str]:
        return list(self._f[path].keys()) if path in self._f else []

    def refresh(self) -> None:
        """Pick up rows a live writer appended since the last look (SWMR)."""
        self._exists.clear()
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
