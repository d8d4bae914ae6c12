"""One lane of the timeline: a plot of one or more series sharing a y axis.

Curves are drawn from a min/max pyramid (``LodCurve``: the level with about one min/max
pair per pixel column of the visible window, so a zoom frame of a million-row run slices
a few thousand points and never re-reduces the run); NaN/Inf never go through the curve
but into their own marker layer,
pinned to the lane's top edge and never decimated (runs of consecutive non-finite
rows are drawn as a band with a marker at each end, so nothing is dropped).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.PlotDataItem import PlotDataset
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsTextItem

from gui import theme
from gui.series import Series, ema
from gui.views._log_axis import LogTickAxis

AXIS_WIDTH = 62
READOUT_H = 17


class _Readout(QGraphicsTextItem):
    """Text pinned to a lane's top-left corner, on a translucent plate."""

    def paint(self, painter: QPainter, option, widget=None) -> None:  # noqa: ANN001 - Qt signature
        painter.fillRect(self.boundingRect(), QColor(theme.BACKGROUND))
        super().paint(painter, option, widget)


LOD_FACTOR = 4  # rows per cell from one pyramid level to the next
SPARSE_PX = 3  # pixels per raw row from which a curve is drawn antialiased (denser: aliased, looks the same)


class LodCurve(pg.PlotDataItem):
    """A ``PlotDataItem`` whose display data is the visible window of a min/max pyramid.

    Level k holds, per block of ``4**k`` rows, the block's max and min (NaN ignored; an
    all-NaN block stays NaN, a gap) at the block's middle x: every spike survives at every
    zoom. The original dataset is untouched (``getOriginalDataset``).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._levels: list[tuple[np.ndarray, np.ndarray]] = []
        self._levels_of: object = None
        self._level = 0  # the level drawn: above 0 the min/max pairs fill pixel columns
        self._dense = False  # about a point per pixel column or more: drawn aliased

    def updateItems(self, styleUpdate: bool = True) -> None:  # noqa: N802, N803 - pyqtgraph override
        super().updateItems(styleUpdate=styleUpdate)
        # Antialiasing a pixel-dense curve (min/max pairs, or raw rows under SPARSE_PX apart) costs
        # most of a zoom frame and changes nothing visible; a sparse raw window keeps it.
        self.curve.opts["antialias"] = bool(self.opts["antialias"]) and not getattr(self, "_dense", False)

    def _pyramid(self, x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._levels_of is not self._dataset:
            self._levels_of, self._levels = self._dataset, []
            lo = hi = np.asarray(y, np.float64)
            xs = np.asarray(x, np.float64)
            while len(lo) > 2048:
                pad = (-len(lo)) % LOD_FACTOR
                if pad:
                    lo, hi = (np.r_[a, np.full(pad, np.nan)] for a in (lo, hi))
                    xs = np.r_[xs, np.full(pad, xs[-1])]
                lo = np.fmin.reduce(lo.reshape(-1, LOD_FACTOR), axis=1)
                hi = np.fmax.reduce(hi.reshape(-1, LOD_FACTOR), axis=1)
                xs = xs.reshape(-1, LOD_FACTOR)
                xs = 0.5 * (xs[:, 0] + xs[:, -1])
                pairs_y = np.column_stack([hi, lo]).ravel()
                self._levels.append((np.repeat(xs, 2), pairs_y))
        return self._levels

    def _getDisplayDataset(self):  # noqa: ANN202, N802 - pyqtgraph override
        ds = self._dataset
        simple = not (self.opts["fftMode"] or self.opts["derivativeMode"] or self.opts["phasemapMode"]
                      or self.opts["subtractMeanMode"] or self.opts["logMode"][0])
        if ds is None or not simple or len(ds.x) <= 2048:
            return super()._getDisplayDataset()
        if self._datasetDisplay is not None and not self.property("xViewRangeWasChanged"):
            return self._datasetDisplay
        x, y = ds.x, ds.y
        view = self.getViewBox()
        i0, i1 = 0, len(x)
        px = 1000.0
        if view is not None:
            px = max(float(view.width()), 50.0)
            if not view.autoRangeEnabled()[0]:
                rect = view.viewRect()
                i0, i1 = (int(i) for i in np.searchsorted(x, [rect.left(), rect.right()]))
        levels, b, k = self._pyramid(x, y), 1, 0
        while k < len(levels) and (i1 - i0) / b > px:
            b, k = b * LOD_FACTOR, k + 1
        self._level = k
        self._dense = k > 0 or (i1 - i0) * SPARSE_PX > px
        if k == 0:
            wx, wy = x[max(i0 - 1, 0): i1 + 1], y[max(i0 - 1, 0): i1 + 1]
        else:
            lx, ly = levels[k - 1]
            a, z = 2 * max(i0 // b - 1, 0), 2 * (i1 // b + 2)
            wx, wy = lx[a:z], ly[a:z]
        if self.opts["logMode"][1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                wy = np.log10(wy)
            wy = np.where(np.isfinite(wy), wy, np.nan)
        self._datasetDisplay = PlotDataset(wx, wy)
        self.setProperty("xViewRangeWasChanged", False)
        self.setProperty("yViewRangeWasChanged", False)
        return self._datasetDisplay


def _keys(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``[lo, hi]`` as search keys of ``x``'s dtype (floor/ceil for integer steps): numpy would
    otherwise convert all of ``x`` to float for each search."""
    if x.dtype.kind in "iu" and np.isfinite(lo) and np.isfinite(hi):
        info = np.iinfo(x.dtype)
        return np.clip([np.floor(lo), np.ceil(hi)], info.min, info.max).astype(x.dtype)
    return np.array([lo, hi])


def decimate(item: pg.PlotDataItem) -> None:
    """Min/max per pixel column of the visible range, and a cached picture between data changes.

    Peak decimation at one bin per pixel keeps every spike; the device-coordinate cache
    means a cursor move repaints a bitmap, not the path (re-rendered on zoom/pan/data only).
    """
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    item.opts["autoDownsampleFactor"] = 1.0
    item.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def redecimate(vb: pg.ViewBox) -> None:
    """Recompute decimation after a resize (pyqtgraph only does it on range changes)."""
    for item in vb.addedItems:
        if isinstance(item, pg.PlotDataItem):
            item.viewRangeChanged(vb, vb.viewRange(), [True, False])


def fmt(v: float) -> str:
    """A number in at most ~6 characters of significance (NaN/Inf spelled out)."""
    if not np.isfinite(v):
        return "NaN" if np.isnan(v) else ("+Inf" if v > 0 else "−Inf")
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"


def _runs(x: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(bad)
    if not len(idx):
        return np.zeros(0), np.zeros(0)
    cut = np.flatnonzero(np.diff(idx) > 1)
    return x[idx[np.r_[0, cut + 1]]].astype(float), x[idx[np.r_[cut, len(idx) - 1]]].astype(float)


def nonfinite_runs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of consecutive NaN rows and of consecutive ±Inf rows: ``(start_steps, end_steps, is_nan)``."""
    nan_a, nan_b = _runs(x, np.isnan(y))
    inf_a, inf_b = _runs(x, np.isinf(y))
    return (np.concatenate([nan_a, inf_a]), np.concatenate([nan_b, inf_b]),
            np.r_[np.ones(len(nan_a), bool), np.zeros(len(inf_a), bool)])


class Lane:
    """A PlotItem with raw + smoothed curves per series, non-finite markers, cursor and range."""

    def __init__(self, plot: pg.PlotItem, name: str) -> None:
        self.plot = plot
        self.name = name
        self.series: list[Series] = []
        self.colors: list[str] = []
        self.raw: list[pg.PlotDataItem] = []
        self.smooth: list[pg.PlotDataItem] = []
        self.smoothing = 0.0
        self.overlays: list[tuple[str, str, Series]] = []  # other runs' series: (label, colour, series)
        self.overlay_items: list[pg.PlotDataItem] = []
        self.legend: pg.LegendItem | None = None
        self._runs: tuple[np.ndarray, np.ndarray, np.ndarray] = nonfinite_runs(np.zeros(0), np.zeros(0))
        plot.setAxisItems({"left": LogTickAxis("left")})  # log labels that never overlap
        self.log_refused = ""  # why log y is off although asked for ("" when on or not asked)
        self._flat_fixed = False
        plot.setMenuEnabled(False)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        # Vertical grid lines only: Qt's raster engine blends a translucent horizontal line ~15x
        # slower than a vertical one, and the y grid was redrawn on every zoom frame (~2 ms a lane).
        plot.showGrid(x=True, y=False, alpha=0.15)
        plot.getAxis("left").setWidth(AXIS_WIDTH)
        for ax in ("left", "bottom"):
            plot.getAxis(ax).setTextPen(theme.TEXT_DIM)
            plot.getAxis(ax).setPen(theme.BORDER)
            plot.getAxis(ax).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # grid too
            plot.getAxis(ax).enableAutoSIPrefix(False)  # no label: no setHtml a range change
        plot.getViewBox().setDefaultPadding(0.04)
        plot.setAutoVisible(y=True)
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(theme.CURSOR, width=1),
                                      hoverPen=pg.mkPen(theme.ACCENT, width=2))
        self.cursor.setZValue(50)
        plot.addItem(self.cursor, ignoreBounds=True)
        self.region = pg.LinearRegionItem(movable=False, pen=pg.mkPen(None),
                                          brush=pg.mkBrush(240, 82, 79, 45))
        self.region.setZValue(-20)
        self.region.hide()
        plot.addItem(self.region, ignoreBounds=True)
        self.band = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(theme.NAN_COLOR, width=4))
        self.inf_band = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(theme.INF_COLOR, width=4))
        self.marks = pg.ScatterPlotItem(symbol="t", size=9, pxMode=True, pen=pg.mkPen(None))
        self._brushes = np.array([pg.mkBrush(theme.INF_COLOR), pg.mkBrush(theme.NAN_COLOR)], dtype=object)
        self.event_marks = pg.ScatterPlotItem(symbol="t1", size=9, pxMode=True, pen=pg.mkPen(None))
        self._events = np.zeros(0)
        for item in (self.band, self.inf_band, self.marks, self.event_marks):
            item.setZValue(40)
            plot.addItem(item, ignoreBounds=True)
        self.hlines: list[tuple[pg.PlotDataItem, pg.TextItem]] = []
        plot.setTitle(" ", size="8pt")  # a thin row above the plot holds the readout: no curve under it
        plot.layout.setRowFixedHeight(0, READOUT_H)
        plot.titleLabel.setMaximumHeight(READOUT_H)
        self.readout = _Readout(plot.titleLabel)
        self.readout.setZValue(100)
        self.readout.setPos(0, -3)
        self.readout.setDefaultTextColor(QColor(theme.TEXT))
        plot.getViewBox().sigRangeChanged.connect(self._place_markers)
        plot.getViewBox().sigXRangeChanged.connect(self._guard_flat)
        plot.getViewBox().sigResized.connect(redecimate)

    # ------------------------------------------------------------------ data
    def set_series(self, series: list[Series], colors: list[str], smoothing: float) -> None:
        """Replace the curves (only when the run or its rows change, never on cursor moves)."""
        for item in self.raw + self.smooth:
            self.plot.removeItem(item)
        self.series, self.colors, self.raw, self.smooth = list(series), list(colors), [], []
        for s, color in zip(self.series, self.colors):
            sparse = (len(s.x) < 200 and s.name != "loss") or s.measured
            raw = LodCurve(symbol="o" if sparse else None, symbolSize=4, symbolPen=None, symbolBrush=color)
            smooth = LodCurve(pen=pg.mkPen(color, width=1.6))
            for item in (raw, smooth):
                self.plot.addItem(item)  # PlotItem.addItem applies the plot's decimation settings…
                decimate(item)  # …so ours go after it
            self.raw.append(raw)
            self.smooth.append(smooth)
        self._set_curve_data()
        xs = [s.x for s in self.series]
        ys = [s.y for s in self.series]
        if xs:
            self._runs = nonfinite_runs(np.concatenate(xs), np.concatenate(ys))
            order = np.argsort(self._runs[0], kind="stable")
            self._runs = tuple(a[order] for a in self._runs)  # type: ignore[assignment]
        self.set_smoothing(smoothing)
        self._drawn_empty = False
        self._place_markers()

    def _set_curve_data(self) -> None:
        for s, raw in zip(self.series, self.raw):
            y = np.where(np.isfinite(s.y), s.y, np.nan)
            raw.setData(s.x.astype(np.float64), y, connect="finite")

    def set_smoothing(self, weight: float) -> None:
        """EMA weight (0 = off): the raw line turns faint and the smoothed line is drawn on top."""
        self.smoothing = weight
        for s, color, raw, smooth in zip(self.series, self.colors, self.raw, self.smooth):
            faint = QColor(color)
            faint.setAlpha(70 if weight > 0 else 255)
            raw.setPen(None if s.measured else pg.mkPen(faint, width=1 if weight > 0 else 1.4))
            if weight > 0 and len(s.y) > 2:
                y = ema(s.y, weight)
                smooth.setData(s.x.astype(np.float64), np.where(np.isfinite(y), y, np.nan),
                               connect="finite")
                smooth.show()
            else:
                smooth.hide()

    def set_log(self, on: bool) -> bool:
        """Log y when every finite value is > 0 and they span a decade or more; returns whether it is on."""
        every = self.series + [o[2] for o in self.overlays]  # compared runs share the axis
        finite = [f for f in (s.y[np.isfinite(s.y)] for s in every) if len(f)]
        flat = bool(finite) and all(f.min() == f.max() == finite[0][0] for f in finite)
        ok = on and bool(finite) and not flat and all((f > 0).all() for f in finite)
        if ok:  # under one decade a log axis only adds crowded minor labels
            ok = max(float(f.max()) for f in finite) >= 10 * min(float(f.min()) for f in finite)
        self.log_refused = "" if ok or not on else (
            "no values" if not finite else "constant" if flat
            else "values ≤ 0" if not all((f > 0).all() for f in finite) else "under one decade")
        self.plot.setLogMode(y=bool(ok))
        self._fit_constant(bool(ok))
        self._place_markers()
        return bool(ok)

    def _guard_flat(self, *_args: object) -> None:
        """A zoom onto a flat stretch (a constant LR after warm-up) gets a range around the value.

        pyqtgraph keeps the previous height for a zero-height autorange, which showed a
        learning rate of 1e-3 on a −2…2 axis. Visible points are sampled to ≤ 100k.
        """
        vb = self.plot.getViewBox()
        if not self.series or (not vb.autoRangeEnabled()[1] and not self._flat_fixed):
            return
        (x0, x1), _ = vb.viewRange()
        lo, hi = np.inf, -np.inf
        for s in self.series:
            i0, i1 = np.searchsorted(s.x, _keys(s.x, x0, x1))  # the x's dtype: no copy of a 1M-row x
            seg = s.y[max(int(i0) - 1, 0): int(i1) + 1]
            seg = seg[:: max(len(seg) // 100_000, 1)]
            seg = seg[np.isfinite(seg)]
            if seg.size:
                lo, hi = min(lo, float(seg.min())), max(hi, float(seg.max()))
        if not np.isfinite(lo) or hi > lo:
            if self._flat_fixed:
                self._flat_fixed = False
                vb.enableAutoRange(axis=pg.ViewBox.YAxis)
            return
        self._flat_fixed = True
        log = bool(self.plot.ctrl.logYCheck.isChecked()) and lo > 0
        if log:
            self.plot.setYRange(np.log10(lo) - 0.5, np.log10(lo) + 0.5, padding=0)
        else:
            d = abs(lo) if lo else 1.0
            self.plot.setYRange(lo - d, lo + d, padding=0)

    def _fit_constant(self, log: bool) -> None:
        """A flat series (constant LR…) gets a sensible fixed y range instead of ±tiny autoscale."""
        finite = [s.y[np.isfinite(s.y)] for s in self.series]
        finite = [f for f in finite if len(f)]
        vb = self.plot.getViewBox()
        if not finite or any(f.min() != finite[0][0] or f.max() != finite[0][0] for f in finite):
            vb.enableAutoRange(axis=pg.ViewBox.YAxis)
            return
        v = float(finite[0][0])
        if log and v > 0:
            self.plot.setYRange(np.log10(v) - 1, np.log10(v) + 1, padding=0)
        else:
            d = abs(v) if v else 1.0
            self.plot.setYRange(v - d, v + d, padding=0)

    # ------------------------------------------------------------------ cursor, range, readout
    def set_region(self, step_range: tuple[int, int] | None, color: str) -> None:
        if step_range is None:
            self.region.hide()
            return
        self.region.setBrush(QBrush(Qt.BrushStyle.NoBrush))  # edges only: the curves keep their colours
        edge = QColor(color)
        edge.setAlpha(200)
        for line in self.region.lines:
            line.setPen(pg.mkPen(edge, width=1.5, style=Qt.PenStyle.DashLine))
        a, b = step_range
        self.region.setRegion((a - 0.5, b + 0.5))
        self.region.show()

    def set_overlays(self, overlays: list[tuple[str, str, Series]]) -> None:
        """Dashed comparison curves (other runs' series), also shown in the readout."""
        for item in self.overlay_items:
            self.plot.removeItem(item)
        self.overlays, self.overlay_items = list(overlays), []
        for _label, color, series in self.overlays:
            item = LodCurve(pen=pen(color, 1.3, dash=True))
            item.setData(series.x.astype(np.float64), np.where(np.isfinite(series.y), series.y, np.nan),
                         connect="finite")
            item.setZValue(5)
            self.plot.addItem(item)
            decimate(item)
            self.overlay_items.append(item)

    @property
    def overlay_item(self) -> pg.PlotDataItem | None:
        return self.overlay_items[0] if self.overlay_items else None

    def set_legend(self, entries: list[tuple[str, str, bool]]) -> None:
        """A legend of runs: ``(name, colour, dashed)``; empty hides it."""
        if self.legend is not None:
            if self.legend.scene() is not None:
                self.legend.scene().removeItem(self.legend)
            self.legend = None
        if not entries:
            return
        self.legend = pg.LegendItem(offset=(-8, 4), labelTextColor=theme.TEXT, labelTextSize="8pt",
                                    brush=pg.mkBrush(theme.BACKGROUND), verSpacing=-6)
        self.legend.setParentItem(self.plot.getViewBox())
        for name, color, dashed in entries:
            sample = pg.PlotDataItem(pen=pen(color, 2.0, dash=dashed))
            self.legend.addItem(sample, name)

    def update_readout(self, step: int) -> None:
        """Value at the cursor and delta from the previous logged step, per series (O(log N))."""
        rows = [(s.name, c, s) for s, c in zip(self.series, self.colors)]
        rows += self.overlays
        parts = []
        for label, color, s in rows:
            at = s.value_at(step)
            if at is None:
                parts.append(f"<span style='color:{color}'>{label}</span> –")
                continue
            v, d = at
            delta = "" if not np.isfinite(d) else f" <span style='color:{theme.TEXT_DIM}'>Δ {fmt(d)}</span>"
            if getattr(s, "measured", False):  # say where the shown value was measured
                at_step = int(s.x[int(np.searchsorted(s.x, step, side="right")) - 1])
                if at_step != step:
                    delta += f" <span style='color:{theme.TEXT_DIM}'>@ {at_step:,}</span>"
            parts.append(f"<span style='color:{color}'>{label}</span> <b>{fmt(v)}</b>{delta}")
        if not parts:
            parts = [f"<span style='color:{theme.TEXT_DIM}'>{self.name}</span>"]
        self.readout.setHtml("&nbsp;&nbsp;".join(parts))

    # ------------------------------------------------------------------ non-finite layer
    def _place_markers(self, *args: object) -> None:
        """Pin the non-finite layer to the lane's top edge (called on every range change)."""
        start, end, is_nan = self._runs
        (lx0, _), (y0, y1) = self.plot.getViewBox().viewRange()
        empty = not len(start) and not len(self._events)
        if empty and getattr(self, "_drawn_empty", False):  # nothing to pin: no work per zoom frame
            self._place_labels(lx0)
            return
        self._drawn_empty = empty
        top = y1 - 0.04 * (y1 - y0)
        span = end > start
        for band, kind in ((self.band, is_nan), (self.inf_band, ~is_nan)):
            bx = np.column_stack([start[span & kind], end[span & kind]]).ravel()
            band.setData(bx, np.full(len(bx), top))
        xs = np.concatenate([start, end[span]])
        nan = np.concatenate([is_nan, is_nan[span]]).astype(int)
        self.marks.setData(xs, np.full(len(xs), top), brush=list(self._brushes[nan]))
        self.event_marks.setData(self._events, np.full(len(self._events), y0 + 0.05 * (y1 - y0)))
        self._place_labels(lx0)

    def _place_labels(self, lx0: float) -> None:
        for line, label in self.hlines:
            ys = line.yData
            if ys is not None and len(ys):
                y = float(ys[0])
                log = self.plot.getAxis("left").logMode
                label.setPos(lx0, np.log10(y) if log and y > 0 else y)

    # ------------------------------------------------------------------ finding marks
    def set_marks(self, hlines: list[tuple[float, str]], events: list[int], color: str,
                  span: tuple[float, float]) -> None:
        """A finding's evidence: dashed horizontal lines (a loss floor…) and event ticks at the bottom."""
        for line, label in self.hlines:
            self.plot.removeItem(line)
            self.plot.removeItem(label)
        self.hlines = []
        for y, text in hlines:
            line = pg.PlotDataItem([span[0], span[1]], [y, y], pen=pen(color, 1.5, dash=True))
            line.setZValue(30)
            self.plot.addItem(line)  # inside the autorange: the floor is always on screen
            label = pg.TextItem(f"{text} = {fmt(y)}" if text else fmt(y), color=color, anchor=(0, 1))
            label.setZValue(31)
            self.plot.addItem(label, ignoreBounds=True)
            self.hlines.append((line, label))
        self._events = np.asarray(events, dtype=np.float64)
        self.event_marks.setBrush(pg.mkBrush(color))
        self._drawn_empty = False
        self._place_markers()

    def nonfinite_count(self) -> int:
        return int(sum((~np.isfinite(s.y)).sum() for s in self.series))

    def view_rect(self) -> QRectF:
        return self.plot.getViewBox().viewRect()


def pen(color: str, width: float = 1.0, dash: bool = False) -> QPen:
    p = pg.mkPen(color, width=width)
    if dash:
        p.setStyle(Qt.PenStyle.DashLine)
    return p
