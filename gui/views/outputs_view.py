"""Outputs at the cursor: sampled logits/probabilities beside their targets, class distributions.

Made to show collapse at a glance: a big readout says which class is predicted for what
share of the batch and how confident the model is. Regression outputs (one column)
are drawn as outputs against targets. The per-step arrays are loaded once on a worker;
scrubbing then only slices them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from analysis import outputs_data as od
from analysis import views_data as vd
from analysis.trace import Trace
from gui.state import RunState
from gui.views._common import LaneView, WorkerLane, colormap, int_ticks, nonfinite_overlay

NO_OUTPUTS = ("This trace has no outputs recorded, so there is nothing to show here.\n"
              "Pass outputs=… (and targets=…) to rec.step() to record them.")
_UNSET = object()
_FIELDS = (("outputs", "sample"), ("outputs", "argmax_hist"), ("outputs", "softmax_maxprob"),
           ("outputs", "nonfinite"), ("targets", "sample"), ("targets", "class_hist"))


def _load(trace: Trace) -> dict[tuple[str, str], np.ndarray]:
    """The per-step arrays this view slices (absent fields left out)."""
    return {(g, f): trace.batch(g, f) for g, f in _FIELDS if trace.has(f"{g}/{f}")}


class OutputsView(LaneView, QWidget):
    """Outputs and targets of the sampled rows at the cursor step, with a collapse readout."""

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.probabilities = True
        self._lane = WorkerLane(self)
        self._data: dict[tuple[str, str], np.ndarray] | None = None
        self._applied: dict[str, Any] = {}
        self._loaded: tuple[int, int] | None = None  # (run id, rows) the arrays were read for
        self.summary = ""  # the readout's headline as plain text
        self._build_ui()
        state.runsChanged.connect(self._on_runs)
        state.runUpdated.connect(self._on_run_updated)
        state.stepChanged.connect(lambda _: self.refresh())
        self._on_runs()

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        self.readout = QLabel("", self)
        self.readout.setStyleSheet("font-size: 16px; font-weight: bold")
        self.readout.setWordWrap(True)
        self.readout.setFixedHeight(4 * self.readout.fontMetrics().height() + 8)  # no relayout per step
        self.scale_box = QComboBox(self)
        self.scale_box.addItem("probabilities (softmax)", True)
        self.scale_box.addItem("logits (raw outputs)", False)
        self.scale_box.currentIndexChanged.connect(self._on_scale)
        top = QHBoxLayout()
        top.addWidget(self.readout, 1)
        top.addWidget(self.scale_box, 0, Qt.AlignmentFlag.AlignTop)

        self.glw = pg.GraphicsLayoutWidget(self)
        self.out_plot = self._image_plot(0, 0, "outputs (sampled rows)", "column")
        self.tgt_plot = self._image_plot(0, 1, "targets", "class")
        self.out_image = pg.ImageItem(axisOrder="row-major")
        self.tgt_image = pg.ImageItem(axisOrder="row-major")
        self._out_bad = pg.ImageItem(axisOrder="row-major")
        self._out_bad.setZValue(5)
        self.out_plot.addItem(self.out_image)
        self.out_plot.addItem(self._out_bad)
        self.tgt_plot.addItem(self.tgt_image)
        self.out_bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("viridis"), interactive=False)
        self.out_bar.setImageItem([self.out_image], insert_in=self.out_plot)
        self.dist_plot = self.glw.addPlot(row=1, col=0, title=(
            "<small>class counts at the cursor: <span style='color:#e6783c'>■</span> predicted "
            "<span style='color:#5a8cdc'>■</span> true</small>"))
        self.dist_plot.setMenuEnabled(False)
        self.pred_bars = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(230, 120, 60))
        self.true_bars = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(90, 140, 220))
        self.dist_plot.addItem(self.pred_bars)
        self.dist_plot.addItem(self.true_bars)
        self.dist_plot.setLabel("bottom", "class")
        self.dist_plot.setLabel("left", "rows")
        self.prob_plot = self.glw.addPlot(row=1, col=1, title="<small>max probability per row</small>")
        self.prob_plot.setMenuEnabled(False)
        self.prob_curve = self.prob_plot.plot(stepMode="center", fillLevel=0, brush=(180, 120, 220, 160),
                                              antialias=False)  # an antialiased fill: ~5 ms of every step
        self.prob_plot.setLabel("bottom", "max softmax probability")
        self.prob_plot.setXRange(0, 1, padding=0.02)
        # regression page
        self.reg_plot = pg.PlotWidget(self)
        self.reg_plot.setMenuEnabled(False)
        self.reg_plot.setLabel("bottom", "target")
        self.reg_plot.setLabel("left", "output")
        self.reg_scatter = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(230, 120, 60, 200), pen=None)
        self.reg_diag = pg.PlotDataItem(pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.reg_off = pg.ScatterPlotItem(size=11, symbol="t", brush=pg.mkBrush(240, 180, 0, 230), pen=None)
        self.reg_plot.addItem(self.reg_diag)
        self.reg_plot.addItem(self.reg_scatter)
        self.reg_plot.addItem(self.reg_off)
        self.reg_plot.getViewBox().disableAutoRange()

        self.message = QLabel(NO_OUTPUTS, self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("font-size: 15px; color: #888")
        self.pages = QStackedWidget(self)
        for page in (self.glw, self.reg_plot, self.message):
            self.pages.addWidget(page)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.pages, 1)

    def _image_plot(self, row: int, col: int, title: str, xlabel: str) -> pg.PlotItem:
        plot = self.glw.addPlot(row=row, col=col, title=f"<small>{title}</small>")
        plot.setMenuEnabled(False)
        plot.getViewBox().invertY(True)
        plot.setLabel("bottom", xlabel)
        plot.setLabel("left", "row")
        return plot

    # ------------------------------------------------------------------ state → view
    def _on_scale(self, i: int) -> None:
        self.probabilities = bool(self.scale_box.itemData(i))
        self.refresh()

    def _on_run_updated(self, index: int) -> None:
        """New rows reload the arrays; a new report on the same rows changes nothing here."""
        run = self.state.run
        if index == self.state.current and run is not None and self._loaded != (id(run), run.trace.n_steps):
            self._on_runs()

    def _on_runs(self) -> None:
        run = self.state.run
        self._loaded = (id(run), run.trace.n_steps) if run is not None else None
        self._lane.cancel()
        self._data = None
        self._applied.clear()
        if run is None:
            self.readout.setText("")
            self.summary = ""
            self._show_message("No run open.")
            return
        if not run.trace.has("outputs/sample"):
            self.summary = "no outputs recorded"
            self.readout.setText(self.summary)
            self._show_message(NO_OUTPUTS)
            return
        self.readout.setText("loading outputs…")
        trace = run.trace
        self._lane.submit(lambda: _load(trace), self._on_loaded)

    def _on_loaded(self, result: Any) -> None:
        if isinstance(result, Exception):
            self._show_message(f"cannot read outputs: {result}")
            return
        self._data = result
        self.refresh()

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.scale_box.hide()
        self.pages.setCurrentWidget(self.message)

    def refresh(self) -> None:
        """Redraw at the cursor step."""
        run, data = self.state.run, self._data
        if run is None or data is None:
            return
        row = min(run.trace.row_of(self.state.step), len(data[("outputs", "sample")]) - 1)
        out = np.asarray(data[("outputs", "sample")][row], dtype=np.float64)
        tgt = data.get(("targets", "sample"))
        tgt = None if tgt is None else np.asarray(tgt[row], dtype=np.float64)
        step = int(run.trace.steps[row])
        out, tgt = vd.drop_padding_rows(out, tgt)
        if out.shape[-1] == 1:
            self._draw_regression(out, tgt, step)
        else:
            self._draw_classes(run.trace, data, row, out, tgt, step)

    # ------------------------------------------------------------------ drawing
    def _apply(self, key: str, value: Any, setter: Callable[[Any], Any]) -> None:
        """Call ``setter(value)`` only when ``value`` differs from the last one (keeps scrubbing cheap)."""
        if self._applied.get(key, _UNSET) != value:
            self._applied[key] = value
            setter(value)

    def _draw_classes(self, trace: Trace, data: dict, row: int, out: np.ndarray, tgt: np.ndarray | None,
                      step: int) -> None:
        self.pages.setCurrentWidget(self.glw)
        self.scale_box.show()
        rows, classes = out.shape
        rec = data.get(("outputs", "argmax_hist"))
        mp = data.get(("outputs", "softmax_maxprob"))
        bad = data.get(("outputs", "nonfinite"))
        ro = od.class_readout(out, None if rec is None else rec[row], None if mp is None else float(mp[row]),
                              None if bad is None else float(bad[row]))
        self._apply("scale_text", "probabilities (as recorded)" if ro.already_probs else
                    "probabilities (softmax)", lambda t: self.scale_box.setItemText(0, t))
        shown = ro.probs if self.probabilities else out
        if self.probabilities:
            levels, cmap = (0.0, 1.0), "viridis"
        else:
            lim = vd.symmetric_limit(out)
            levels, cmap = (-lim, lim), "RdBu"
        self._apply("cmap", cmap, lambda c: self.out_bar.setColorMap(colormap(c)))
        rect = QRectF(-0.5, -0.5, classes, rows)
        self.out_image.setImage(np.where(np.isfinite(shown), shown, levels[0]), autoLevels=False,
                                levels=levels, rect=rect)
        self._apply("levels", levels, self.out_bar.setLevels)
        overlay = nonfinite_overlay(vd.nonfinite_flags(out))
        self._out_bad.setImage(overlay, rect=rect) if overlay is not None else self._out_bad.clear()
        self._apply("out_title", f"<small>{'probabilities' if self.probabilities else 'logits'} of {rows} "
                    "sampled rows</small>", self.out_plot.setTitle)
        self._draw_targets(tgt, classes, rows)
        counts = ro.counts
        true = data.get(("targets", "class_hist"))
        true = np.asarray(true[row], np.float64) if true is not None else None
        n_bins = max(len(counts), len(true) if true is not None else 0)
        self._apply("shape", (rows, classes, n_bins), self._set_frame)
        self.pred_bars.setOpts(x=np.arange(len(counts)) - 0.2, height=counts)
        self.true_bars.setOpts(x=np.arange(len(true)) + 0.2 if true is not None else [],
                               height=true if true is not None else [])
        tallest = float(max(np.max(counts, initial=0), np.max(true, initial=0) if true is not None else 0))
        top = self._applied.get("dist_y", 0.0)
        if tallest > top or tallest < 0.5 * top:  # hysteresis: the axis stays put while scrubbing
            self._apply("dist_y", max(tallest * 1.25, 1.0),
                        lambda t: self.dist_plot.setYRange(0, t, padding=0))
        hist, edges = vd.maxprob_hist(ro.probs)
        self.prob_curve.setData(edges, hist.astype(float))
        self._apply("prob_label", "max probability (as recorded)" if ro.already_probs else
                    "max softmax probability", lambda t: self.prob_plot.setLabel("bottom", t))
        self._set_readout(ro, true, step)

    def _set_frame(self, shape: tuple[int, int, int]) -> None:
        """Axis ranges and ticks for outputs of ``rows × classes`` (set once per shape, not per step)."""
        rows, classes, n_bins = shape
        for plot in (self.out_plot, self.tgt_plot):
            plot.getViewBox().setRange(QRectF(-0.5, -0.5, classes, rows), padding=0.02)
            int_ticks(plot.getAxis("bottom"), classes)
        int_ticks(self.dist_plot.getAxis("bottom"), n_bins)
        self.dist_plot.setXRange(-0.6, n_bins - 0.4, padding=0)
        self.prob_plot.setYRange(0, rows, padding=0.02)

    def _draw_targets(self, tgt: np.ndarray | None, classes: int, rows: int) -> None:
        if tgt is None:
            self.tgt_image.clear()
            self._apply("tgt_title", "<small>no targets recorded</small>", self.tgt_plot.setTitle)
            return
        if tgt.shape[-1] == 1 and classes > 1:  # class indices → one-hot beside the outputs
            img, title = vd.one_hot(tgt[:, 0], classes), "targets (one-hot of the class index)"
            levels = (0.0, 1.0)
        else:
            img, title = tgt, "targets (dense)"
            levels = (float(np.nanmin(tgt)), float(np.nanmax(tgt))) if np.isfinite(tgt).any() else (0., 1.)
        self.tgt_image.setImage(np.nan_to_num(img), autoLevels=False, levels=levels,
                                rect=QRectF(-0.5, -0.5, img.shape[1], rows))
        self._apply("tgt_title", f"<small>{title}</small>", self.tgt_plot.setTitle)

    def _show_readout(self, summary: str, detail: str, color: str) -> None:
        self.summary = summary
        small = "<span style='font-size: 11px; font-weight: normal'>"
        self.readout.setText(f"{summary}<br>{small}{detail}</span>")
        self._apply("readout_color", color, lambda c: self.readout.setStyleSheet(
            f"font-size: 16px; font-weight: bold; color: {c}"))

    def _set_readout(self, ro: od.ClassReadout, true: np.ndarray | None, step: int) -> None:
        if ro.top < 0:
            what = "every sampled row" if ro.bad_rows >= ro.rows else "the batch"
            self._show_readout("no finite outputs", f"step {step} · NaN/Inf in {what}: no class is predicted",
                               "#e0f")
            return
        rows = "rows" if ro.counts_source == "batch" else "finite sampled rows"
        summary = f"predicts class {ro.top} for {ro.share:.0%} of {rows}  ·  max prob {ro.maxprob:.2f}"
        src = "each row's largest probability as recorded" if ro.already_probs else \
            "each row's top softmax probability"
        detail = f"step {step} · max prob: batch mean of {src}"
        if ro.bad_rows:
            bad = f"NaN/Inf in {ro.bad_rows} of {ro.rows} sampled rows"
            detail = f"<span style='color:#e0f'>{bad}</span> · {detail}"
        if true is not None:
            tk, tshare = vd.top_class(true)
            if tk >= 0:
                detail += f" · commonest target: class {tk} ({tshare:.0%})"
        color = "#ff5050" if ro.share >= 0.99 else "#e0a000" if ro.share >= 0.9 else "palette(text)"
        self._show_readout(summary, detail, color)

    def _draw_regression(self, out: np.ndarray, tgt: np.ndarray | None, step: int) -> None:
        self.pages.setCurrentWidget(self.reg_plot)
        self.scale_box.hide()
        y = out[:, 0]
        x = tgt[:, 0] if tgt is not None and tgt.shape[0] == len(y) else np.arange(len(y), dtype=float)
        self._apply("reg_x", "target" if tgt is not None else "sampled row (no targets recorded)",
                    lambda t: self.reg_plot.setLabel("bottom", t))
        frame = od.scatter_frame(x, y)
        inside = ~frame.off
        self.reg_scatter.setData(frame.x[inside], frame.y[inside])
        self.reg_off.setData(frame.x[frame.off], frame.y[frame.off])
        diag = [frame.lo, frame.hi] if tgt is not None and len(frame.x) else []
        self.reg_diag.setData(diag, diag)
        self._apply("reg_range", (frame.lo, frame.hi), lambda r: (
            self.reg_plot.setXRange(*r, padding=0), self.reg_plot.setYRange(*r, padding=0)))
        self._apply("reg_title", f"<small>outputs vs targets of {len(y)} sampled rows</small>",
                    self.reg_plot.setTitle)
        spread = vd.finite_std(y)
        target_spread = vd.finite_std(x) if tgt is not None else float("nan")
        finite_y = y[np.isfinite(y)]
        if not finite_y.size:
            self._show_readout("no finite outputs", f"step {step} · NaN/Inf in all {len(y)} sampled rows",
                               "#e0f")
            return
        scale = float(np.max(np.abs(finite_y)))
        same = bool(np.isfinite(spread) and spread <= 1e-6 * max(scale, 1.0))
        summary = "same output for every row" if same else f"output spread (std over rows) {spread:.3g}"
        if np.isfinite(target_spread):
            summary += f"  ·  target spread {target_spread:.3g}"
        detail = f"step {step}, {len(y)} sampled rows"
        if frame.off.any():
            off = f"▲ {int(frame.off.sum())} off-scale, drawn on the edge (up to {frame.worst:.3g})"
            detail += f" · <span style='color:#e0a000'>{off}</span>"
        if frame.bad:
            detail += f" · <span style='color:#e0f'>{frame.bad} NaN/Inf not drawn</span>"
        color = "#ff5050" if same else "palette(text)"
        self._show_readout(summary, detail, color)
