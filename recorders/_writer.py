"""The only h5py writer: one background thread behind a bounded queue.

The training thread hands over rows (tensors, possibly on an accelerator) and events
(snapshots, histograms, liveness windows); this thread copies them to the host, derives
the statistics with numpy, appends whole blocks of rows per dataset, and flushes at least
every ``flush_secs``. In SWMR mode every dataset is created at the first step and only
grown afterwards, so a killed process leaves a file that opens, holding every row up to
the last flush.

What is complete on disk is told by the ``status`` record (``schema.STATUS``), rewritten in
place with ``os.pwrite`` after each successful flush (SWMR forbids rewriting attributes, and
a raw write of a few bytes at a known offset needs no allocation, so it also works on a full
disk). When writing fails the record says where and why recording stopped, the HDF5 file
descriptor is pointed at /dev/null and the file closed there, so that neither HDF5's later
flushes nor its exit-time cleanup can fail, flood stderr or scribble over what was flushed.
"""

from __future__ import annotations

import collections
import datetime
import os
import queue
import re
import threading
import time
from typing import Any

import h5py
import numpy as np
import torch

from recorders import _paths, _stats, _summary, schema
from recorders._layout import Growable, Layout

MAX_PENDING_ROWS = 16384
WAKE_ROWS = 4096  # pending rows that make the thread write before its next flush
PUT_TIMEOUT = 60.0


STATUS_DTYPE = np.dtype(list(schema.STATUS_FIELDS))


class WriterError(RuntimeError):
    """The writer thread failed; ``__cause__`` holds the original exception."""


def _reason(exc: BaseException) -> str:
    """A short why: the OS error HDF5 hit when there is one (``No space left on device``)."""
    text = str(exc)
    code = getattr(exc, "errno", None) or next(iter(re.findall(r"errno = (\d+)", text)), None)
    if code:
        return f"{os.strerror(int(code))} [errno {int(code)}]"
    lines = text.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:200]


def _to_numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().to("cpu").numpy()
    return np.asarray(t)


def _cast(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` as ``dtype``; NaN (an argument not given) becomes -1 in integer datasets."""
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        arr = np.where(np.isfinite(arr), arr, -1)
    return arr.astype(dtype, copy=False)


def _host_block(rows: list, lay: Layout) -> np.ndarray:
    """Host row parts ``[loss, carry, praw | None, mraw | None]`` as ``(n, core width)``."""
    n = len(rows)
    p_sl, m_sl = lay.segments["params"], lay.segments["modules"]
    out = np.full((n, m_sl.stop), np.nan)
    out[:, 0] = [r[0] for r in rows]
    out[:, 1] = [r[1] for r in rows]
    for k, r in enumerate(rows):
        if r[2] is not None:
            out[k, p_sl] = r[2]
        if r[3] is not None:
            out[k, m_sl] = r[3]
    return out


def _rows_block(rows: list) -> np.ndarray:
    """Rows (numpy, or tensors on any device) as one float64 ``(n, width)`` array.

    Accelerator rows are stacked there and copied in one go, through pinned memory.
    """
    if not all(isinstance(r, torch.Tensor) for r in rows):
        return np.stack([_to_numpy(r).astype(np.float64, copy=False) for r in rows])
    block = torch.stack([r.to(torch.float64) for r in rows])
    if block.device.type == "cuda":
        host = torch.empty(block.shape, dtype=block.dtype, pin_memory=True)
        host.copy_(block, non_blocking=True)
        torch.cuda.current_stream(block.device).synchronize()
        return host.numpy()
    return block.cpu().numpy()


def _runs(keys: list) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of equal consecutive keys."""
    out, start = [], 0
    for k in range(1, len(keys) + 1):
        if k == len(keys) or keys[k] != keys[start]:
            out.append((start, k))
            start = k
    return out


_STR = h5py.string_dtype()


def _text_attr(obj: Any, key: str, value: str) -> None:
    """A variable-length UTF-8 string attribute (as ``obj.attrs[key] = value`` writes it),
    through the low-level API: snapshot datasets carry two each."""
    tid = h5py.h5t.py_create(_STR, logical=True)
    attr = h5py.h5a.create(obj, key.encode(), tid, h5py.h5s.create(h5py.h5s.SCALAR))
    attr.write(np.array(value, dtype=_STR))


# Files abandoned in a forked child: kept referenced so that h5py never closes them there.
_ABANDONED: list = []


class TraceWriter:
    """Owns the HDF5 file. Public methods run on the training thread and never block on I/O
    except when the queue is full (back-pressure)."""

    def __init__(self, path: str, root_attrs: dict[str, Any], swmr: bool, flush_secs: float):
        self.path, self.notes = _paths.claim(path)
        self.swmr = swmr
        self.flush_secs = flush_secs
        self.error: BaseException | None = None
        self.nonfinite_step: int | None = None  # first row with a non-finite value seen
        self.io_lock = threading.Lock()  # held around h5py calls (fork safety)
        # SWMR needs the latest format; without it the oldest format keeps a killed run's
        # file openable without h5clear.
        libver = "latest" if swmr else "earliest"
        # HDF5 holds an exclusive lock until SWMR writing starts; from then on the shared
        # flock of _paths.hold on the status descriptor tells other recorders the file is in use.
        self._file: h5py.File | None = h5py.File(self.path, "w", libver=libver)
        self._lock_fd = os.open(self.path, os.O_RDWR)  # status writes, and the lock once SWMR starts
        for key, value in root_attrs.items():
            self._file.attrs[key] = value
        self._file.attrs[schema.ATTR_CREATED] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        )
        self.status = np.zeros((), STATUS_DTYPE)
        self.status["stopped_at"] = -1
        self._status_ds = self._file.create_dataset(schema.STATUS, data=self.status[None])
        self._file.flush()
        self._status_at = self._status_ds.id.get_offset()  # None: not contiguous, write via h5py
        if self._status_at is not None:
            self._status_ds = None  # closed: readers in this process must not share its cached bytes
        self._fd = self._file.id.get_vfd_handle()
        self._ino = os.fstat(self._fd).st_ino
        self._unflushed_step: int | None = None  # step of the first row written since the last flush
        self._layout: Layout | None = None
        self._rows_written = 0
        self._counts: dict[str, int] = {}
        self._handles: dict[str, h5py.Dataset] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._dirty = False
        self._staged: dict[str, list[np.ndarray]] = {}
        self._tails: dict[str, tuple[int, ...]] = {}
        self._groups: dict[str, h5py.Group] = {}  # appends waiting for the next commit
        self._last_flush = time.monotonic()
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple] = collections.deque()  # appended without a lock
        self._summary: _summary.Summary | None = None
        self._scalars: list[tuple[int, int, float]] = []
        self._names: list[tuple[int, str]] = []
        self._thread = threading.Thread(target=self._run, name="trainwreck-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ training thread

    def check(self) -> None:
        """Raise :class:`WriterError` if the thread has failed."""
        if self.error is not None:
            raise WriterError(self.failure_text()) from self.error

    def failure_text(self) -> str:
        """One line: where and why writing stopped, and what the trace still holds."""
        st = self.status
        rows = int(st["steps_written"])
        where = f" at step {int(st['stopped_at'])}" if int(st["stopped_at"]) >= 0 else ""
        kept = f"the trace keeps its first {rows} recorded steps" if rows else "the trace holds no step"
        return f"writing failed{where} ({_reason(self.error) if self.error else 'unknown'}); {kept}"

    def submit(self, kind: str, payload: Any = None) -> None:
        self.check()
        try:
            self._queue.put((kind, payload), timeout=PUT_TIMEOUT)
        except queue.Full:
            raise WriterError("trace writer is not keeping up (queue full for 60 s)") from None

    def add_row(
        self, row: Any, step: int, t: float, lrs: list[float], flags: int = 0, batch: Any = None
    ) -> None:
        """Queue one finished row: a float64 vector laid out as the Layout says (numpy or a
        tensor on any device), the groups it measured, and for CPU batches the copies the
        batch summaries are computed from (the row then stops before the batch fields)."""
        if self.error is not None:
            self.check()
        pending = self._pending
        pending.append((row, step, t, lrs, flags, batch))  # deque.append: atomic
        n = len(pending)
        if n >= MAX_PENDING_ROWS:
            with self._cond:
                if not self._cond.wait_for(
                    lambda: len(pending) < MAX_PENDING_ROWS or self.error is not None, timeout=PUT_TIMEOUT
                ):
                    raise WriterError("trace writer is not keeping up")
        if n % WAKE_ROWS == 0:
            try:
                self._queue.put_nowait(("wake", None))
            except queue.Full:
                pass

    def add_scalar(self, step: int, name_id: int, value: float, new_name: str | None) -> None:
        with self._cond:
            if new_name is not None:
                self._names.append((name_id, new_name))
            self._scalars.append((step, name_id, value))

    def close(self, clean: bool, timeout: float = 60.0) -> None:
        """Write what is queued, mark the file closed (``clean``) and stop the thread."""
        if self._thread.is_alive():
            try:
                self._queue.put(("close", clean), timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
        self._close_file(clean=False)
        if not self._thread.is_alive():
            self._release_lock()

    def abandon(self) -> None:
        """In a forked child: never touch the parent's file again.

        The h5py objects stay referenced (so they are never closed here) and the file
        descriptor is pointed at /dev/null, so that even HDF5's own exit-time flush cannot
        write into the parent's file.
        """
        _ABANDONED.append(self._file)
        self._file = None
        self.error = self.error or RuntimeError("recorder disabled in a forked child")
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        while True:
            wait = self._last_flush + self.flush_secs - time.monotonic()
            try:
                kind, payload = self._queue.get(timeout=min(max(wait, 0.005), self.flush_secs))
            except queue.Empty:
                kind, payload = "tick", None
            if self.error is not None:
                if kind == "close":
                    return
                continue
            try:
                with self.io_lock:
                    self._handle(kind, payload)
            except BaseException as exc:  # surfaced on the training thread
                self._fail(exc)
            if kind == "close":
                return

    def _handle(self, kind: str, payload: Any) -> None:
        """One event. Rows, snapshots, histograms and liveness windows are staged and go to
        the file together once per ``flush_secs`` (one append per dataset, then one flush):
        HDF5 holds the GIL, so the training thread pays for every call made here."""
        if kind == "layout":
            self._create(payload)
        elif kind == "snapshot":
            self._write_snapshot(*payload)
        elif kind == "hist":
            self._write_hist(*payload)
        elif kind == "units":
            self._write_units(*payload)
        due = time.monotonic() - self._last_flush >= self.flush_secs
        if self._layout is not None and (due or kind in ("wake", "flush", "close", "layout")):
            self._drain()
        if kind == "close":
            self._finish(payload)
        elif self._dirty and (due or kind in ("flush", "layout")):
            self._flush()

    def _drain(self) -> None:
        with self._cond:
            pending = self._pending
            rows = [pending.popleft() for _ in range(len(pending))]
            scalars, self._scalars = self._scalars, []
            names, self._names = self._names, []
            self._cond.notify_all()
        if rows:
            if self._unflushed_step is None:
                self._unflushed_step = int(rows[0][1])
            self._write_rows(rows)
        if names or scalars:
            self._write_scalars(names, scalars)
        self._commit()

    def _flush(self) -> None:
        assert self._file is not None
        self._file.flush()
        self._check_path()
        st = self.status
        st["steps_written"] = self._rows_written
        for key, paths in schema.STATUS_COUNTS.items():
            st[key] = min((self._counts.get(p, 0) for p in paths), default=0)
        self._put_status()
        self._unflushed_step = None
        self._dirty = False
        self._last_flush = time.monotonic()

    def _check_path(self) -> None:
        """Fail when the file is no longer at its path (deleted, its folder removed, replaced)."""
        try:
            same = os.stat(self.path).st_ino == self._ino
        except OSError:
            same = False
        if not same:
            raise FileNotFoundError(f"the trace file {self.path} was removed or replaced while recording")

    def _put_status(self) -> None:
        """Write the status record in place (never allocates: works on a full disk)."""
        if self._status_at is None or self._lock_fd is None:
            self._status_ds[0] = self.status
        else:
            os.pwrite(self._lock_fd, self.status.tobytes(), self._status_at)

    def _finish(self, clean: bool) -> None:
        if self._file is None:
            return
        if self._layout is not None:
            self._drain()
            if self._summary is not None:
                self._summary.close()
            self._commit()
        self._flush()
        self._file.close()  # on failure, _fail closes it again with its descriptor on /dev/null
        self._file = None
        self._handles.clear()
        self._groups.clear()
        if clean and self._status_at is not None and self._lock_fd is not None:
            self.status["closed_cleanly"] = 1  # only once HDF5 has closed the file without error
            self._put_status()
        self._release_lock()

    def _fail(self, exc: BaseException) -> None:
        """On the writer thread: record where and why writing stopped, then drop the file."""
        self.error = exc
        st = self.status
        with self._cond:
            pending = self._pending[0][1] if self._pending else None
        step = self._unflushed_step if self._unflushed_step is not None else pending
        st["stopped_at"] = -1 if step is None else step
        st["reason"] = _reason(exc).encode("utf-8")[: schema.STATUS_REASON_BYTES]
        try:
            self._put_status()
        except Exception:  # noqa: BLE001 - nothing can be written (EPERM, EIO): the last record stands
            pass
        self._sink()
        with self._cond:
            self._cond.notify_all()
        self._close_file(clean=False)
        self._release_lock()

    def _sink(self) -> None:
        """Point HDF5's descriptor at /dev/null: its remaining writes (close, exit) then succeed,
        land nowhere, and cannot overwrite what the last good flush left on disk."""
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _close_file(self, clean: bool) -> None:
        f, self._file = self._file, None
        if f is None:
            self._handles.clear()
            self._groups.clear()
            return
        mine = threading.current_thread() is self._thread
        if not mine and not self.io_lock.acquire(timeout=PUT_TIMEOUT):
            return  # the thread is stuck inside h5py: leave the file to the OS
        try:
            if f.id.valid:
                f.close()
        except Exception:
            pass
        finally:
            self._handles.clear()
            self._groups.clear()
            if not mine:
                self.io_lock.release()

    # ------------------------------------------------------------------ h5py

    def _create(self, layout: Layout) -> None:
        f = self._file
        assert f is not None
        meta = f.require_group(schema.META)
        for key, text in layout.meta.items():
            meta.attrs[key] = text
        for path, data in layout.static.items():
            if data.dtype.kind in "OU":
                f.create_dataset(path, data=data.astype(object), dtype=h5py.string_dtype())
            else:
                f.create_dataset(path, data=data)
        for g in layout.growable:
            self._create_growable(g)
        for path, attrs in layout.group_attrs.items():
            grp = f.require_group(path)
            for key, value in attrs.items():
                grp.attrs[key] = value
        self._layout = layout
        if layout.summary_block:
            self._summary = _summary.Summary(layout.summary_block, self._append_group)
        if self.swmr:
            f.swmr_mode = True
            _paths.hold(self._lock_fd)
        self._dirty = True
        self._flush()

    def _create_growable(self, g: Growable) -> None:
        """Create ``g`` through h5py's low-level API (a fifth of the high-level call's cost:
        a trace creates a hundred or more of these at its first step)."""
        assert self._file is not None
        # HDF5 chunks must be positive: an empty trailing dim (no parameters, no columns)
        # gets a chunk of 1 and an unlimited maximum.
        chunks = tuple(max(1, c) for c in g.chunks())
        unlimited = h5py.h5s.UNLIMITED
        space = h5py.h5s.create_simple((0, *g.tail), (unlimited, *(d if d else unlimited for d in g.tail)))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(chunks)
        dcpl.set_obj_track_times(False)
        if g.compress:
            dcpl.set_filter(h5py.h5z.FILTER_LZF, h5py.h5z.FLAG_OPTIONAL)
        dtype = np.dtype(g.dtype)
        parent, _, name = g.path.rpartition("/")
        group = self._group(parent)
        dsid = h5py.h5d.create(group.id, name.encode(), h5py.h5t.py_create(dtype), space, dcpl=dcpl)
        h5py.h5ds.set_label(dsid, 0, b"step")
        ds = h5py.Dataset(dsid)
        self._handles[g.path] = ds
        for key, value in g.attrs.items():
            if isinstance(value, str):
                _text_attr(dsid, key, value)
            else:
                ds.attrs[key] = value
        self._counts[g.path] = 0
        self._tails[g.path] = tuple(g.tail)
        self._dtypes[g.path] = dtype

    def _group(self, path: str) -> h5py.Group:
        assert self._file is not None
        group = self._groups.get(path)
        if group is None:
            group = self._groups[path] = self._file.require_group(path) if path else self._file
        return group

    def _dataset(self, path: str) -> h5py.Dataset:
        """An open handle, kept: a handle closed per append flushes (and fails) inside h5py's
        deallocator, where an error is only printed, never raised."""
        ds = self._handles.get(path)
        if ds is None:
            assert self._file is not None
            ds = self._handles[path] = self._file[path]
        return ds

    def _append(self, path: str, arr: np.ndarray) -> None:
        """Stage ``arr`` (rows along axis 0) for ``path``; :meth:`_commit` writes it."""
        if path not in self._counts:
            raise KeyError(f"no dataset {path} in the trace layout")
        self._staged.setdefault(path, []).append(arr)

    def _commit(self) -> None:
        """Write every staged append: one resize and one write per dataset."""
        staged, self._staged = self._staged, {}
        for path, arrs in staged.items():
            ds = self._dataset(path)
            dtype = self._dtypes.get(path)
            if dtype is None:
                dtype = self._dtypes[path] = ds.dtype
            tail = self._tails[path]
            arrs = [a.reshape(a.shape[0], *tail) for a in arrs]
            arr = np.ascontiguousarray(_cast(arrs[0] if len(arrs) == 1 else np.concatenate(arrs), dtype))
            n0 = self._counts[path]
            n1 = n0 + arr.shape[0]
            dsid = ds.id
            dsid.set_extent((n1, *tail))
            if arr.size:
                space = dsid.get_space()
                space.select_hyperslab((n0, *([0] * (arr.ndim - 1))), arr.shape)
                dsid.write(h5py.h5s.create_simple(arr.shape), space, arr)
            self._counts[path] = n1
            self._dirty = True

    def _append_group(self, group: str, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            self._append(f"{group}/{name}", arr)

    def _full_block(self, rows: list) -> np.ndarray:
        """Rows as one ``(n, width)`` float64 array; CPU batch copies summarised here."""
        lay = self._layout
        assert lay is not None
        out = []
        for start, stop in _runs([isinstance(r[0], list) for r in rows]):
            run = rows[start:stop]
            host = isinstance(run[0][0], list)
            core = _host_block([r[0] for r in run], lay) if host else _rows_block([r[0] for r in run])
            if host and lay.batch_block is not None:
                core = np.hstack([core, lay.batch_block([r[5] for r in run])])
            out.append(core)
        return out[0] if len(out) == 1 else np.vstack(out)

    def _write_rows(self, rows: list) -> None:
        lay = self._layout
        assert lay is not None
        block = self._full_block(rows)
        n = block.shape[0]
        data: dict[str, np.ndarray] = {
            schema.STEP: np.array([r[1] for r in rows], dtype=np.int64),
            schema.MEASURED: np.array([r[4] for r in rows], dtype=np.uint8),
            schema.TIME: np.array([r[2] for r in rows], dtype=np.float64),
            schema.LR: np.array([r[3] for r in rows], dtype=np.float64).reshape(n, lay.n_groups),
            schema.LOSS: block[:, lay.segments["loss"]].reshape(n),
            schema.GRAD_CARRY: block[:, lay.segments["carry"]].reshape(n).astype(np.float32),
        }
        praw = block[:, lay.segments["params"]].reshape(n, len(_stats.PARAM_RAW), lay.n_params)
        for name, arr in _stats.derive_params(praw, lay.numel).items():
            data[f"{schema.PARAMS}/{name}"] = arr
        mraw = block[:, lay.segments["modules"]].reshape(n, lay.n_modules, len(_stats.MODULE_RAW))
        for name, arr in _stats.derive_modules(mraw, lay.bounded).items():
            data[f"{schema.MODULES}/{name}"] = arr
        for fld in lay.fields:
            data[fld.path] = block[:, fld.start : fld.start + fld.size].reshape(n, *fld.tail)
        for path, arr in data.items():
            self._append(path, arr)
        self._note_nonfinite(data)
        if self._summary is not None:
            self._summary.add(data)
        self._rows_written += n

    def _note_nonfinite(self, data: dict[str, np.ndarray]) -> None:
        if self.nonfinite_step is not None:
            return
        bad = ~np.isfinite(data[schema.LOSS])
        bad |= data[f"{schema.PARAMS}/w_nonfinite"].sum(axis=1) > 0
        bad |= data[f"{schema.PARAMS}/g_nonfinite"].sum(axis=1) > 0
        if bad.any():
            self.nonfinite_step = int(data[schema.STEP][np.argmax(bad)])

    def _write_scalars(self, names: list[tuple[int, str]], scalars: list) -> None:
        assert self._file is not None
        ds = self._dataset(schema.SCALAR_NAMES)
        for i, name in names:
            ds[i] = name.encode("utf-8")[: ds.dtype.itemsize]
        if scalars:
            arr = np.array(scalars, dtype=np.float64)
            self._append(schema.SCALAR_STEP, arr[:, 0].astype(np.int64))
            self._append(schema.SCALAR_ID, arr[:, 1].astype(np.int32))
            self._append(schema.SCALAR_VALUE, arr[:, 2])
        self._dirty = True

    def _write_snapshot(self, step: int, reason: int, weights: list, grads: list) -> None:
        lay = self._layout
        assert lay is not None
        self._append(schema.SNAP_STEP, np.array([step], dtype=np.int64))
        self._append(schema.SNAP_REASON, np.array([reason], dtype=np.int8))
        for i, w, g in zip(lay.snapshot_keys, weights, grads):
            key = schema.param_key(i)
            w_np = _to_numpy(w)
            self._append(f"{schema.SNAP_WEIGHT}/{key}", w_np[None])
            g_np = np.full_like(w_np, np.nan) if g is None else _to_numpy(g)
            self._append(f"{schema.SNAP_GRAD}/{key}", g_np.reshape(w_np.shape)[None])

    def _write_hist(self, step: int, kinds: dict[str, list]) -> None:
        self._append(schema.HIST_STEP, np.array([step], dtype=np.int64))
        for kind, items in kinds.items():
            counts = np.zeros((len(items), schema.HIST_BINS), dtype=np.int32)
            ranges = np.full((len(items), 2), np.nan, dtype=np.float32)
            for i, item in enumerate(items):
                if item is not None:
                    counts[i] = _to_numpy(item[0])
                    ranges[i] = _to_numpy(item[1])
            self._append(f"{schema.HIST}/{kind}", counts[None])
            self._append(f"{schema.HIST}/{kind}_range", ranges[None])

    def _write_units(self, step: int, masks: dict[int, Any]) -> None:
        lay = self._layout
        assert lay is not None
        self._append(schema.UNIT_STEP, np.array([step], dtype=np.int64))
        for j in lay.unit_modules:
            path = f"{schema.UNIT_ALIVE}/{schema.module_key(j)}"
            assert self._file is not None
            width = self._tails[path][0]
            m = masks.get(j)
            arr = np.zeros(width, dtype=np.uint8) if m is None else _to_numpy(m).astype(np.uint8)
            if arr.shape != (width,):
                arr = np.zeros(width, dtype=np.uint8)
            self._append(path, arr[None])
