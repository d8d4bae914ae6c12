"""Histograms of the selected layer: each tensor at the cursor step, beside its whole history.

One row per tensor (weight, gradient, activation): on the left the stored histogram of
the last histogram step at or before the cursor, on the right every histogram step as a
steps × bins image (colour = log count) on one value axis (``analysis.hist_time``). The
images share their step axis; the cursor is a line across them; a click sets the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from analysis import hist_time as ht
from analysis import views_data as vd
from analysis.trace import Trace
from gui.state import RunState
from gui.views._common import CURSOR_PEN, NO_DATA_COLOR, LaneView, WorkerLane, clicked_step, colormap, fmt
from gui.views._link import PlotLink
from gui.views.layer_view import HIST_KINDS, resolve_layer

LABELS = {"weight": "weight", "grad": "gradient", "act": "activation"}


def _load(trace: Trace, p: int | None, m: int | None) -> dict[str, Any]:
    """Per kind: ``(counts, ranges, TimeImage)`` or None; computed on the worker."""
    out: dict[str, Any] = {}
    for kind, _, _ in HIST_KINDS:
        index = m if kind == "act" else p
        got = trace.hist(kind, index) if index is not None else None
        if got is None or not len(got[0]):
            out[kind] = None
            continue
        counts, ranges = (np.asarray(a) for a in got)
        out[kind] = (counts, ranges, ht.time_image(counts, ranges))
    return out


class HistogramView(LaneView, QWidget):
    """Weight / gradient / activation histograms of one layer: at the cursor, and over time."""

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._lane = WorkerLane(self)
        self._data: dict[str, Any] | None = None
        self._key: tuple | None = None
        self._steps = np.zeros(0, np.int64)
        self._drawn_row: int | None = None
        self._build_ui()
        state.runsChanged.connect(self._on_runs)
        state.runUpdated.connect(self._on_run_updated)
        state.layerChanged.connect(lambda _l: self.reload())
        state.stepChanged.connect(self._on_step)
        self._on_runs()

    def _build_ui(self) -> None:
        self.title = QLabel("", self)
        self.title.setStyleSheet("font-weight: bold")
        self.glw = pg.GraphicsLayoutWidget(self)
        self.glw.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.hists: dict[str, pg.PlotItem] = {}
        self.times: dict[str, pg.PlotItem] = {}
        self._bars: dict[str, pg.PlotDataItem] = {}
        self._images: dict[str, pg.ImageItem] = {}
        self._cursors: dict[str, pg.InfiniteLine] = {}
        first: pg.PlotItem | None = None
        for row, (kind, _, _) in enumerate(HIST_KINDS):
            hist = self.glw.addPlot(row=row, col=0)
            hist.setMenuEnabled(False)
            hist.hideAxis("left")
            self._bars[kind] = hist.plot(stepMode="center", fillLevel=0, brush=(90, 140, 220, 150),
                                         pen=pg.mkPen((130, 180, 255)), antialias=False)
            time = self.glw.addPlot(row=row, col=1)
            time.setMenuEnabled(False)
            time.getAxis("left").enableAutoSIPrefix(False)
            time.getAxis("bottom").enableAutoSIPrefix(False)
            time.getAxis("left").setWidth(48)
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(colormap("viridis").getLookupTable(nPts=256))
            time.addItem(image)
            cursor = pg.InfiniteLine(angle=90, movable=False, pen=CURSOR_PEN)
            cursor.setZValue(10)
            time.addItem(cursor, ignoreBounds=True)
            dash = pg.mkPen((200, 200, 200, 90), style=Qt.PenStyle.DashLine)
            zero = pg.InfiniteLine(angle=0, pos=0, pen=dash)
            time.addItem(zero, ignoreBounds=True)
            if first is None:
                first = time
            else:
                time.setXLink(first)
            if row < len(HIST_KINDS) - 1:
                time.getAxis("bottom").setStyle(showValues=False)
            self.hists[kind], self.times[kind] = hist, time
            self._images[kind], self._cursors[kind] = image, cursor
        self.times[HIST_KINDS[-1][0]].setLabel("bottom", "step  (colour: log₁₀(1 + count))")
        self.link = PlotLink(self.state, first)  # the step axis follows the shared window
        self.glw.ci.layout.setColumnStretchFactor(0, 2)
        self.glw.ci.layout.setColumnStretchFactor(1, 5)
        self.glw.scene().sigMouseClicked.connect(self._on_click)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.glw, 1)

    # ------------------------------------------------------------------ tests, stepping, reports
    def logged_steps(self) -> np.ndarray:
        """The steps this view has data for (→ in this view goes to the next histogram)."""
        return self._steps

    def figure_widgets(self) -> list[QWidget]:
        return [self.glw]

    # ------------------------------------------------------------------ state → view
    def _on_run_updated(self, index: int) -> None:
        """New rows re-read the histograms (the key holds the rows); a new report changes nothing."""
        run = self.state.run
        if index == self.state.current and run is not None and (self._key is None or self._key[:2] != (
                id(run), run.trace.n_steps)):
            self._on_runs()

    def _on_runs(self) -> None:
        self._key = None
        run = self.state.run
        self._steps = run.trace.hist_steps() if run is not None else np.zeros(0, np.int64)
        self.reload()

    def reload(self) -> None:
        run = self.state.run
        if run is None:
            self._lane.cancel()
            self._data = None
            self.title.setText("no run open")
            self._clear()
            return
        trace = run.trace
        p, m, note = resolve_layer(trace, self.state.layer)
        key = (id(run), trace.n_steps, p, m)
        if key == self._key:
            return
        self._key = key
        self._names = (trace.param_names[p] if p is not None else None,
                       trace.module_names[m] if m is not None else None, note)
        self._lane.submit(lambda: _load(trace, p, m), self._on_loaded)

    def _on_loaded(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.title.setText(f"cannot read histograms: {result}")
            return
        self._data = result
        pname, mname, note = self._names
        head = " · ".join(n for n in (pname, mname) if n) or "—"
        self.title.setText(f"{head}" + (f"  ·  {note}" if note else "")
                           + f"  ·  {len(self._steps)} histogram steps")
        for kind, _, _ in HIST_KINDS:
            self._draw_time(kind, result.get(kind))
        self._drawn_row = None
        self._on_step(self.state.step)

    def _clear(self) -> None:
        for kind, _, _ in HIST_KINDS:
            self._images[kind].clear()
            self._bars[kind].setData([], [])
            self.hists[kind].setTitle(f"<small>no {LABELS[kind]} histogram</small>")

    def _draw_time(self, kind: str, got: Any) -> None:
        plot, image = self.times[kind], self._images[kind]
        if got is None or not len(self._steps):
            image.clear()
            plot.setTitle(f"<small>no {LABELS[kind]} histograms</small>")
            return
        timg: ht.TimeImage = got[2]
        n = min(len(self._steps), len(timg.image))
        rgba_levels = ht.log_counts(timg.image[:n]).T  # (bins, H): value up, step across
        run = self.state.run
        last = float(run.trace.steps[-1]) if run is not None and run.trace.n_steps else None
        x0, width = ht.step_extent(self._steps[:n], last)
        lo, hi = float(timg.edges[0]), float(timg.edges[-1])
        top = float(rgba_levels.max()) if rgba_levels.size else 1.0
        image.setImage(rgba_levels, autoLevels=False, levels=(0.0, max(top, 1e-9)),
                       rect=QRectF(x0, lo, width, hi - lo))
        title = f"{LABELS[kind]} over {n} histogram steps"
        if not timg.has_row[:n].all():  # steps without a histogram
            missing = int((~timg.has_row[:n]).sum())
            title += f" · <span style='color:rgb{NO_DATA_COLOR[:3]}'>{missing} without values</span>"
        plot.setTitle(f"<small>{title}</small>")
        first = float(run.trace.steps[0]) if last is not None else x0
        if plot is self.link.plot:  # the others are x-linked to it; the shared window wins when set
            self.link.fit(min(x0, first), max(x0 + width, last if last is not None else x0 + width))
        plot.setYRange(lo, hi, padding=0.02)

    def _on_step(self, step: int) -> None:
        for cursor in self._cursors.values():
            cursor.setValue(step)
        run, data = self.state.run, self._data
        if run is None or data is None:
            return
        hr = vd.row_at_or_before(self._steps, step)
        if hr == self._drawn_row:
            return
        self._drawn_row = hr
        for kind, nonfinite, zero in HIST_KINDS:
            self._draw_hist(run.trace, kind, data.get(kind), hr, nonfinite, zero)

    def _draw_hist(self, trace: Trace, kind: str, got: Any, hr: int | None, nonfinite: str,
                   zero: str | None) -> None:
        plot, bars = self.hists[kind], self._bars[kind]
        if got is None or hr is None or hr >= len(got[0]):
            bars.setData([], [])
            plot.setTitle(f"<small>no {LABELS[kind]} histogram</small>")
            return
        counts, ranges, _ = got
        sh = ht.step_hist(counts[hr], ranges[hr])
        bars.setData(sh.edges, sh.counts) if len(sh.counts) else bars.setData([], [])
        plot.setXRange(*sh.x_range, padding=0)
        plot.setYRange(0, float(sh.counts.max()) * 1.08 if len(sh.counts) else 1.0, padding=0)
        step = int(self._steps[hr])
        extra = [f"all values = {fmt(sh.single)}"] if sh.single is not None else []
        group, index = ("modules", self._key[3]) if kind == "act" else ("params", self._key[2])
        row = trace.row_of(step)
        bad = vd.stat_at(trace, group, nonfinite, row, index)
        if bad:
            extra.append(f"<span style='color:#f0f'>NaN/Inf {fmt(bad)}</span>")
        if zero:
            z = vd.stat_at(trace, group, zero, row, index)
            if np.isfinite(z) and sh.single is None:
                extra.append(f"zero {z:.0%}")
        plot.setTitle(f"<small>{kind} @ step {step}" + (" · " + " · ".join(extra) if extra else "")
                      + "</small>")

    # ------------------------------------------------------------------ view → state
    def _on_click(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        step = clicked_step(ev.scenePos(), self.times.values())
        if step is not None:
            self.state.set_step(step)
