"""``TraceRecorder``: the public recording API, made never fatal and fork safe.

Every public method goes through :func:`_guarded`: the first exception (ours, a hook's,
or the writer thread's) becomes one :class:`TrainwreckWarning` pointing at the user's
line, the recorder closes what it can and turns into a no-op, and training goes on.
``TRAINWRECK_STRICT=1`` re-raises instead (the test suite sets it).
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from recorders._options import Options

F = TypeVar("F", bound=Callable[..., Any])


class TrainwreckWarning(UserWarning):
    """The recorder hit a problem and stopped recording; training is unaffected."""


def _strict() -> bool:
    return os.environ.get("TRAINWRECK_STRICT", "").strip() not in ("", "0")


def _guarded(method: F) -> F:
    """Run ``method`` unless the recorder is dead; turn its first failure into a warning."""

    @functools.wraps(method)
    def wrapper(self: TraceRecorder, *args: Any, **kwargs: Any) -> Any:
        if not self._usable():
            return None
        try:
            self._raise_pending()
            return method(self, *args, **kwargs)
        except Exception as exc:
            if _strict():
                raise
            self._fail(exc)
            return None

    return wrapper  # type: ignore[return-value]


class TraceRecorder:
    """Record a PyTorch training run to an HDF5 trace (see ``docs/trace-format.md``).

    ``TraceRecorder(path, model, optimizer=None, loss_fn=None, **options)``; call
    ``rec.step(loss, outputs=None, targets=None, inputs=None)`` once per optimisation
    step, after ``loss.backward()``, before or after ``optimizer.step()``;
    ``rec.log(name, value)`` for extra scalars; ``rec.close()`` (or use ``with``).

    Options:
        every (1): record a row every k-th ``rec.step`` call; the others cost ~nothing.
        budget (0.03): share of the training time the recorder may spend. Every row has
            the cheap statistics (loss, lr, batch summaries, logged scalars); the expensive
            ones (parameters, activations, update ratios) are *measured* on as many rows as
            the budget allows, the others hold NaN and ``steps/measured`` says which.
            ``budget=1``: full detail, every statistic on every row.
        dense_start (100): the first k steps are measured in full.
        flight_steps (64): after a non-finite or spiking/climbing loss or a 10x jump of the
            gradient norm, the next k steps are measured in full (the flight recorder).
        snapshot_every (100): snapshot every parameter and gradient every k calls (also
            at the first and last step and at the first non-finite value).
        snapshot_bytes (512 MiB): total snapshot bytes; log-spaced once half is used.
        hist_every (100): 64-bin histograms of weights, grads and activations on the
            first recorded step of every window of k calls; also the liveness window.
        activations (True): leaf-module output statistics via forward hooks.
        update_every (1): measure ``update_ratio`` on every k-th measured row (NaN on the
            others). A measurement copies every weight and reads it three more times.
        batch_rows (512): batch summaries are over at most this many first rows.
        act_max_elems (2**20): activation statistics over at most this many first elements.
        summary_block (1024): steps per block of the finest ``/summary`` level.
        sample_rows (16): batch rows kept as samples of outputs, targets, inputs.
        max_features (64): input features kept (evenly strided).
        max_columns (256): output / target columns kept.
        snapshot_max_elems (65536): larger tensors are snapshotted strided.
        flush_secs (1.0): rows reach the file (and ``steps_written``) this often.
        swmr (True): HDF5 single-writer/multiple-reader mode: the file can be read while
            it is written and survives a killed process up to the last flush.
        scaler (None): a ``torch.amp.GradScaler``; its scale is logged as ``amp_scale`` and
            skipped steps as ``amp_skipped`` at every recorded row.

    A failure (unwritable path, disk full, a bug here) warns once with a
    :class:`TrainwreckWarning` and disables the recorder; training continues.
    """

    def __init__(
        self, path: Any, model: Any, optimizer: Any = None, loss_fn: Any = None, **options: Any
    ) -> None:
        self._alive = False
        self._warned = False
        self._pid = os.getpid()
        self._pending: BaseException | None = None
        self._engine: Any = None
        self._amp: Any = None
        self.path = os.fspath(path)
        try:
            self._open(model, optimizer, loss_fn, options)
        except Exception as exc:
            if _strict():
                raise
            self._alive = True  # so that _fail runs its course
            self._fail(exc)

    def _open(self, model: Any, optimizer: Any, loss_fn: Any, options: dict[str, Any]) -> None:
        from recorders._amp import ScalerLog
        from recorders._engine import Engine

        options = dict(options)
        scaler = options.pop("scaler", None)
        self._amp = ScalerLog(scaler) if scaler is not None else None
        self.options = Options.from_kwargs(options)
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._alive = True
        self._engine = Engine(self.path, model, optimizer, loss_fn, self.options, self._on_error)
        self.path = self._engine.path
        for note in self._engine.writer.notes:  # an existing file moved aside, or a path in use
            warnings.warn(f"Trainwreck: {note}", TrainwreckWarning, stacklevel=3)
        _register(self)

    # ------------------------------------------------------------------ public API

    def step(self, loss: Any, outputs: Any = None, targets: Any = None, inputs: Any = None) -> None:
        """Record one optimisation step (after ``backward``, before or after ``optimizer.step``)."""
        # The guard of _guarded, inlined: this runs at every step.
        if not self._alive or os.getpid() != self._pid:
            return
        try:
            if self._pending is not None:
                self._raise_pending()
            engine = self._engine
            if engine.fast:
                engine.fast_step(loss, outputs, targets, inputs)
            else:
                engine.step(loss, outputs, targets, inputs)
            if self._amp is not None:
                self._amp.after_step(engine)
        except Exception as exc:
            if _strict():
                raise
            self._fail(exc)

    @_guarded
    def log(self, name: str, value: Any) -> None:
        """Record an extra scalar at the current step (the last ``rec.step``, or 0)."""
        self._engine.log(str(name), value)

    @_guarded
    def close(self) -> None:
        """Flush everything and mark the trace closed cleanly. Idempotent."""
        _unregister(self)
        engine = self._engine
        if engine is not None:
            engine.close(clean=True)
            engine.writer.check()  # a failure while writing the last rows
        self._alive = False

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        self.close()
        return False

    @property
    def recording(self) -> bool:
        """True while the recorder writes (False after close, a failure, or in a child)."""
        return self._usable()

    # ------------------------------------------------------------------ failure handling

    def _usable(self) -> bool:
        return self._alive and os.getpid() == self._pid

    def _on_error(self, exc: BaseException) -> None:
        """Errors from hooks: raise in strict mode, else surface on the next public call."""
        if _strict():
            raise exc
        if self._pending is None:
            self._pending = exc
        if self._engine is not None and self._engine.acts is not None:
            self._engine.acts.capturing = False

    def _raise_pending(self) -> None:
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc
        if self._engine is not None:
            self._engine.writer.check()

    def _fail(self, exc: BaseException) -> None:
        """Warn once (at the user's call), release what can be released, become a no-op."""
        if not self._alive:
            return
        self._alive = False
        _unregister(self)
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"Trainwreck stopped recording to {self.path!r}: {type(exc).__name__}: {exc}. "
                "Training continues without a trace.",
                TrainwreckWarning,
                stacklevel=3,
            )
        engine = self._engine
        if engine is not None:
            try:
                engine.detach()
            finally:
                engine.writer.close(clean=False)

    def _disown(self) -> None:
        """In a forked child: stop at once, never touching the parent's file."""
        self._alive = False
        engine = self._engine
        if engine is not None:
            if engine.acts is not None:
                engine.acts.capturing = False
            if engine.probe is not None:
                engine.probe.enabled = False
            if engine.opt_hooks is not None:
                engine.opt_hooks.enabled = False
            engine.writer.abandon()


# ---------------------------------------------------------------------- process-wide

_LIVE: dict[int, TraceRecorder] = {}
_LIVE_LOCK = threading.Lock()
_FORK_HELD: list[threading.Lock] = []


def _register(rec: TraceRecorder) -> None:
    with _LIVE_LOCK:
        _LIVE[id(rec)] = rec


def _unregister(rec: TraceRecorder) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(id(rec), None)


def _before_fork() -> None:
    # Hold each writer's I/O lock so no writer thread is inside HDF5 at the fork.
    for rec in list(_LIVE.values()):
        lock = rec._engine.writer.io_lock if rec._engine is not None else None
        if lock is not None and lock.acquire(timeout=5.0):
            _FORK_HELD.append(lock)


def _after_fork_parent() -> None:
    while _FORK_HELD:
        _FORK_HELD.pop().release()


def _after_fork_child() -> None:
    for rec in list(_LIVE.values()):
        rec._disown()
    _LIVE.clear()
    _after_fork_parent()


def _close_all() -> None:
    """At interpreter exit: close every recorder this process opened (never raises)."""
    for rec in list(_LIVE.values()):
        if rec._pid == os.getpid():
            try:
                rec.close()
            except Exception:  # strict mode re-raises; at exit there is no one to tell
                pass


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)
# atexit runs handlers last-registered-first, and h5py's own handler unregisters its type
# converters: a trace closed after it fails or crashes. Importing h5py first makes ours run first.
import h5py  # noqa: E402, F401

atexit.register(_close_all)
