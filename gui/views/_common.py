"""Shared pieces of the data views: colormaps, non-finite colours, axes, a worker lane.

Kept here so every view draws NaN/±Inf the same way, labels steps the same way and
runs slow reads the same way (one background lane per view, newest request wins).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from analysis.views_data import NAN_FLAG, NEGINF_FLAG, POSINF_FLAG

# Fixed colours outside every colormap (RGBA), in drawing priority order.
NONFINITE_COLORS: tuple[tuple[int, str, tuple[int, int, int, int]], ...] = (
    (NAN_FLAG, "NaN", (255, 0, 255, 255)),
    (POSINF_FLAG, "+Inf", (255, 255, 255, 255)),
    (NEGINF_FLAG, "−Inf", (0, 255, 255, 255)),
)
NO_DATA_COLOR = (70, 70, 70, 255)  # recorded as "not measured" (e.g. update ratio between updates)
CURSOR_PEN = pg.mkPen((255, 80, 80), width=1)
SELECT_PEN = pg.mkPen((255, 255, 255), width=2)
RANGE_BRUSH = pg.mkBrush(255, 200, 0, 45)
DEAD_COLOR = (230, 60, 60)
ALIVE_COLOR = (70, 150, 90)

# RdBu reversed (blue < 0 < red), ColorBrewer control points.
_RDBU = ((0.0, "#053061"), (0.1, "#2166ac"), (0.3, "#4393c3"), (0.45, "#d1e5f0"), (0.5, "#f7f7f7"),
         (0.55, "#fddbc7"), (0.7, "#d6604d"), (0.9, "#b2182b"), (1.0, "#67001f"))


def colormap(name: str) -> pg.ColorMap:
    """A colormap by name: ``RdBu`` (diverging, built in), ``greys``, or any pyqtgraph map."""
    if name == "RdBu":
        return pg.ColorMap([p for p, _ in _RDBU], [QColor(c) for _, c in _RDBU], name="RdBu")
    if name == "greys":
        return pg.ColorMap([0.0, 1.0], [(30, 30, 30), (240, 240, 240)], name="greys")
    return pg.colormap.get(name)


def nonfinite_overlay(flags: np.ndarray, values: np.ndarray | None = None) -> np.ndarray | None:
    """RGBA ``(*flags.shape, 4)`` uint8: flagged cells in their fixed colour (None if nothing to paint).

    With ``values``, cells that are NaN but unflagged (nothing recorded there) are painted
    in ``NO_DATA_COLOR``.
    """
    empty = np.isnan(values) & (flags == 0) if values is not None else None
    if not flags.any() and (empty is None or not empty.any()):
        return None
    rgba = np.zeros(flags.shape + (4,), np.uint8)
    if empty is not None:
        rgba[empty] = NO_DATA_COLOR
    for bit, _, color in reversed(NONFINITE_COLORS):  # highest priority painted last
        rgba[(flags & bit) != 0] = color
    return rgba


def nonfinite_legend(parent: QWidget | None = None, no_data: bool = False) -> QWidget:
    """A small ``■ NaN ■ +Inf ■ −Inf`` legend of the fixed colours (and ``■ no data``)."""
    box = QWidget(parent)
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(8)
    entries = [(name, color) for _, name, color in NONFINITE_COLORS]
    for name, (r, g, b, _a) in entries + ([("no data", NO_DATA_COLOR)] if no_data else []):
        label = QLabel(f'<span style="color: rgb({r},{g},{b}); font-size: 14px">■</span> {name}', box)
        lay.addWidget(label)
    return box


def elide(name: str, width: int = 24) -> str:
    """Shorten a dotted name to ``width``: inner words shrink to initials, indices and the tail stay.

    ``model.layers.11.self_attn.q_proj.weight`` → ``model.l.11.s.q_proj.weight``.
    """
    parts = name.split(".")
    while len(".".join(parts)) > width:
        inner = [i for i in range(len(parts) - 1) if len(parts[i]) > 1 and not parts[i].isdigit()]
        if not inner:
            break
        i = max(inner, key=lambda j: len(parts[j]))
        keep = len(parts[i]) - (len(".".join(parts)) - width) - 1
        parts[i] = parts[i][:keep] + "…" if keep >= 2 else parts[i][0]
    out = ".".join(parts)
    if len(out) <= width:
        return out
    return "…" + out[len(out) - width + 1:]


def fmt(value: float) -> str:
    """A value for readouts: exact-looking, compact, NaN/Inf spelled out."""
    if value is None:
        return "—"
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "+Inf" if value > 0 else "−Inf"
    return f"{value:.6g}"


def int_ticks(axis: pg.AxisItem, n: int, most: int = 24) -> None:
    """Integer ticks ``0 … n-1`` on an axis of categories (automatic ticks beyond ``most``)."""
    if n > most:
        axis.setTicks(None)
        return
    axis.setTicks([[(i, str(i)) for i in range(n)], []])


class StepAxis(pg.AxisItem):
    """Bottom axis of a row-indexed plot that prints the global step of each row."""

    def __init__(self, orientation: str = "bottom", **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self._steps = np.zeros(0, np.int64)

    def set_steps(self, steps: np.ndarray) -> None:
        self._steps = np.asarray(steps)
        self.picture = None
        self.update()

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        if not len(self._steps):
            return super().tickStrings(values, scale, spacing)
        n = len(self._steps)
        out = []
        for v in values:
            r = int(round(v))
            out.append(str(int(self._steps[r])) if 0 <= r < n else "")
        return out


class NameAxis(pg.AxisItem):
    """Left axis listing row names, thinned so labels never overlap, long names elided."""

    def __init__(self, orientation: str = "left", width: int = 24, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self._names: list[str] = []
        self._chars = width
        self._keep: int | None = None

    def set_names(self, names: Sequence[str], keep: int | None = None) -> None:
        """Row names; ``keep`` is a row always labelled (the selected layer)."""
        self._names = list(names)
        self._keep = keep
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[int]]]:  # noqa: N802, N803
        if not self._names:
            return []
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)
        lo, hi = max(int(np.ceil(minVal)), 0), min(int(np.floor(maxVal)), len(self._names) - 1)
        if hi < lo:
            return []
        every = max(1, int(np.ceil((hi - lo + 1) * 13 / max(size, 1.0))))
        ticks = [i for i in range(lo - lo % every, hi + 1, every) if i >= lo]
        keep = self._keep
        if keep is not None and lo <= keep <= hi and keep not in ticks:
            ticks = sorted([i for i in ticks if abs(i - keep) >= every] + [keep])
        return [(float(every), [float(i) for i in ticks])]

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        n = len(self._names)
        return [elide(self._names[int(v)], self._chars) if 0 <= int(v) < n else "" for v in values]


# ----------------------------------------------------------------------------- worker lane
class _Signals(QObject):
    done = Signal(int, object)


class _Task(QRunnable):
    def __init__(self, lane: WorkerLane, req: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._lane, self._req, self._fn = lane, req, fn
        self._signals = lane._signals

    def run(self) -> None:  # worker thread
        if self._req != self._lane.latest:  # superseded before it started: drop
            self._signals.done.emit(self._req, _STALE)
            return
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - reported to the view, never raised in a thread
            result = exc
        self._signals.done.emit(self._req, result)


_STALE = object()


class WorkerLane(QObject):
    """One background lane: ``submit(fn, on_done)``; only the newest request's result is delivered.

    ``fn`` runs on a private ``QThreadPool`` (one thread); ``on_done(result)`` runs in the GUI
    thread, with the exception object as result when ``fn`` raised.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self.latest = 0
        self._pending: dict[int, Callable[[Any], None]] = {}

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> int:
        self.latest += 1
        self._pending[self.latest] = on_done
        self.pool.start(_Task(self, self.latest, fn))
        return self.latest

    def cancel(self) -> None:
        """Drop every request in flight (their results are ignored)."""
        self.latest += 1

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _on_done(self, req: int, result: Any) -> None:
        callback = self._pending.pop(req, None)
        if callback is None or req != self.latest or result is _STALE:
            return
        callback(result)

    def wait(self, timeout_ms: int = 30000) -> None:
        """Block until idle and deliver results (for tests and benchmarks)."""
        self.pool.waitForDone(timeout_ms)
        QCoreApplication.processEvents()


class LaneView:
    """Mixin of a view that loads and draws on a ``WorkerLane`` in ``self._lane``."""

    _lane: WorkerLane

    @property
    def busy(self) -> bool:
        return self._lane.busy

    def wait(self) -> None:
        """Finish the background loads and draws, those a delivered result starts too (tests, benchmarks)."""
        while self._lane.busy:
            self._lane.wait()


def clicked_step(pos: Any, plots: Iterable[pg.PlotItem]) -> int | None:
    """The step under scene position ``pos`` in the first of ``plots`` that holds it, or None."""
    for plot in plots:
        vb = plot.getViewBox()
        if vb.sceneBoundingRect().contains(pos):
            return int(round(vb.mapSceneToView(pos).x()))
    return None
