"""Layer detail at the cursor: weight matrix of the nearest snapshot and dead units.

Histograms of the layer are in ``histogram_view`` (at the cursor and over time).

The selected layer is a parameter or a module name. Snapshots, histograms and unit
liveness are read on a worker lane and cached; a step change that needs nothing new
redraws at once, one that does asks the worker and drops any older request.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from analysis import views_data as vd
from analysis.trace import Trace
from gui.state import RunState
from gui.views._common import (
    ALIVE_COLOR,
    DEAD_COLOR,
    WorkerLane,
    colormap,
    fmt,
    nonfinite_overlay,
)

MODES = {"W": "weights", "grad": "gradient", "dW": "ΔW vs first snapshot"}
HIST_KINDS = (("weight", "w_nonfinite", None), ("grad", "g_nonfinite", "g_zero_frac"),
              ("act", "a_nonfinite", "a_zero_frac"))
_CACHE_MAX = 96


def resolve_layer(trace: Trace, layer: str) -> tuple[int | None, int | None, str]:
    """``(parameter index, leaf module index, note)`` to show for a selected layer name."""
    names, modules = trace.param_names, trace.module_names
    if layer in names:
        p = names.index(layer)
        owner = trace.param_info[p]["module"]
        return p, modules.index(owner) if owner in modules else None, ""
    if layer in modules:
        m = modules.index(layer)
        for j in range(m, -1, -1):  # a parameter-free module (ReLU) shows the weights feeding it
            params = vd.module_params(trace, modules[j])
            if params:
                weight = [p for p in params if names[p].endswith("weight")] or params
                note = "" if j == m else f"weights of {modules[j]}, which feeds {layer}"
                return weight[0], m, note
        return None, m, f"{layer} has no parameters"
    if names:
        owner = trace.param_info[0]["module"]
        return 0, modules.index(owner) if owner in modules else None, "no layer selected: first parameter"
    return None, None, "no layer selected"


_STAT_ROWS = 256  # rows per read of a per-step statistic shown in the info line (one chunk)


class LayerView(QWidget):
    """Weight matrix (or bias bars) and unit liveness of one layer; colour limits locked while scrubbing."""

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.mode = "W"
        self._lane = WorkerLane(self)
        self._cache: dict[tuple, Any] = {}
        self._index: dict[str, np.ndarray] = {}
        self._drawn: dict[str, tuple] = {}
        self._limits: dict[tuple, float] = {}  # (run, param, mode) → colour limit, only ever grows
        self._frame: tuple | None = None  # what the axes were last fitted to
        self._seen: tuple[int, int] | None = None  # (run id, rows) the snapshot index is of
        self._stats: dict[tuple, np.ndarray] = {}  # (trace, group, stat, column, block) → block of rows
        self._build_ui()
        state.runsChanged.connect(self._on_runs)
        state.runUpdated.connect(self._on_run_updated)
        state.stepChanged.connect(lambda _: self.refresh())
        state.layerChanged.connect(lambda _: self.refresh())
        self._on_runs()

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        self.title = QLabel("no run open", self)
        self.title.setWordWrap(True)
        self.title.setFixedHeight(3 * self.title.fontMetrics().height() + 4)
        self.title.setStyleSheet("font-weight: bold")
        self.mode_box = QComboBox(self)
        for key, label in MODES.items():
            self.mode_box.addItem(label, key)
        self.mode_box.currentIndexChanged.connect(self._on_mode)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.mode_box)

        self.glw = pg.GraphicsLayoutWidget(self)
        self.matrix = self.glw.addPlot(row=0, col=0)
        self.matrix.setMenuEnabled(False)
        self.matrix.getViewBox().invertY(True)
        self.matrix.setLabel("left", "output unit")
        self.matrix.setLabel("bottom", "input")
        for axis in ("left", "bottom"):
            self.matrix.getAxis(axis).enableAutoSIPrefix(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self._nonfinite = pg.ImageItem(axisOrder="row-major")
        self._nonfinite.setZValue(5)
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.0)
        self._dead_marks = pg.ScatterPlotItem(symbol="t2", size=9, brush=pg.mkBrush(*DEAD_COLOR), pen=None)
        self._dead_marks.setZValue(6)
        for item in (self.image, self._nonfinite, self.bars, self._dead_marks):
            self.matrix.addItem(item)
        self.cbar = pg.ColorBarItem(values=(-1, 1), colorMap=colormap("RdBu"), interactive=False)
        self.cbar.setImageItem(self.image, insert_in=self.matrix)
        self.units = self.glw.addPlot(row=1, col=0)
        self.units.setMenuEnabled(False)
        self.units.hideAxis("left")
        self.units.setLabel("bottom", "unit")
        self.units.getAxis("bottom").enableAutoSIPrefix(False)
        self.units_image = pg.ImageItem(axisOrder="row-major")
        self.units.addItem(self.units_image)
        self.glw.ci.layout.setRowStretchFactor(0, 10)
        self.glw.ci.layout.setRowStretchFactor(1, 1)
        self.units.setMaximumHeight(70)
        self.glw.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.matrix.scene().sigMouseMoved.connect(self._on_hover)

        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setFixedHeight(2 * self.info.fontMetrics().height() + 4)  # no relayout per step
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.info, 1)
        self.value_label = QLabel("", self)
        bottom.addWidget(self.value_label)
        lay.addLayout(bottom)

    @property
    def busy(self) -> bool:
        return self._lane.busy

    def logged_steps(self) -> np.ndarray:
        """Snapshot steps: → in this view goes to the next weight snapshot."""
        return self._index.get("snap", np.zeros(0, np.int64))

    def figure_widgets(self) -> list[QWidget]:
        return [self.glw]

    def _locked_limit(self, p: int, arr: np.ndarray) -> float:
        """Colour limit of parameter ``p`` in this mode: the largest seen so far (stable while scrubbing)."""
        key = (id(self.state.run), p, self.mode)
        lim = max(self._limits.get(key, 0.0), vd.symmetric_limit(arr))
        self._limits[key] = lim
        return lim

    def _fit(self, frame: tuple, fit) -> None:  # noqa: ANN001 - a callable fitting the axes
        """Fit the axes only when what is shown changes shape (never per snapshot)."""
        if frame != self._frame:
            self._frame = frame
            fit()

    def wait(self) -> None:
        """Finish background reads and draw their results (tests, benchmarks)."""
        while self._lane.busy:
            self._lane.wait()

    # ------------------------------------------------------------------ state → requests
    def _on_mode(self, i: int) -> None:
        self.mode = self.mode_box.itemData(i)
        self.refresh()

    def set_mode(self, mode: str) -> None:
        """``W``, ``grad`` or ``dW``."""
        with QSignalBlocker(self.mode_box):
            self.mode_box.setCurrentIndex(self.mode_box.findData(mode))
        self.mode = mode
        self.refresh()

    def _on_run_updated(self, index: int) -> None:
        """New rows re-index the snapshots; a new report on the same rows changes nothing here."""
        run = self.state.run
        if index == self.state.current and run is not None and self._seen != (id(run), run.trace.n_steps):
            self._on_runs()

    def _on_runs(self) -> None:
        run = self.state.run
        self._seen = (id(run), run.trace.n_steps) if run is not None else None
        self._lane.cancel()
        self._cache.clear()
        self._stats.clear()
        self._drawn.clear()
        self._limits.clear()
        self._frame = None
        if run is None:
            self._index = {}
        else:
            t = run.trace
            self._index = {"snap": t.snapshot_steps(), "unit": t.unit_steps(),
                           "reason": np.array(t.snapshot_reasons(), dtype=object)}
        self.refresh()

    def _needs(self, p: int | None, m: int | None, step: int) -> dict[str, tuple]:
        """Cache keys of everything the current picture is drawn from."""
        keys: dict[str, tuple] = {}
        si = vd.row_at_or_before(self._index["snap"], step)
        if p is not None and si is not None:
            kind = "grad" if self.mode == "grad" else "weight"
            keys["snap"] = ("snap", kind, p, si)
            keys["layout"] = ("layout", kind, p)
            if self.mode == "dW":
                keys["ref"] = ("snap", "weight", p, 0)
        if m is not None:
            keys["alive"] = ("alive", m)
        return keys

    @staticmethod
    def _fetch(trace: Trace, key: tuple) -> Any:
        what = key[0]
        if what == "snap":
            return trace.snapshot(key[1], key[2], key[3])
        if what == "layout":
            return trace.snapshot_layout(key[1], key[2])
        return trace.unit_alive(key[1])

    def refresh(self) -> None:
        """Redraw for the current step and layer, reading what is missing on the worker first."""
        run = self.state.run
        if run is None:
            self.title.setText("no run open")
            return
        trace = run.trace
        p, m, note = resolve_layer(trace, self.state.layer)
        keys = self._needs(p, m, self.state.step)
        missing = [k for k in keys.values() if k not in self._cache]
        if missing:
            self._lane.submit(lambda: {k: self._fetch(trace, k) for k in missing}, self._on_fetched)
            return
        data = {name: self._cache[k] for name, k in keys.items()}
        data["snap_index"] = keys["snap"][3] if "snap" in keys else None
        self._draw(trace, p, m, note, data)

    def _on_fetched(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.info.setText(f"cannot read layer data: {result}")
            return
        for key in list(self._cache)[: max(len(self._cache) + len(result) - _CACHE_MAX, 0)]:
            del self._cache[key]
        self._cache.update(result)
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def _changed(self, part: str, signature: tuple) -> bool:
        """Whether ``part`` must be redrawn (its inputs differ from the last drawing)."""
        if self._drawn.get(part) == signature:
            return False
        self._drawn[part] = signature
        return True

    def _draw(self, trace: Trace, p: int | None, m: int | None, note: str, data: dict[str, Any]) -> None:
        step, run_id = self.state.step, id(self.state.run)
        w = vd.window_at(self._index["unit"], step)
        pname = trace.param_names[p] if p is not None else None
        mname = trace.module_names[m] if m is not None else None
        head = pname or mname or "—"
        if mname and pname and not pname.startswith(mname + "."):
            head = f"{mname} ({pname})"
        if self._changed("matrix", (run_id, p, m, note, self.mode, data.get("snap_index"), w)):
            self._draw_matrix(trace, p, data)
            title = f"{head}  ·  {self._snapshot_text(trace, p, data)}"
            self.title.setText(title + (f"  ·  {note}" if note else ""))
        if self._changed("units", (run_id, m, w)):
            self._draw_units(trace, m, data.get("alive"), w)
        text = self._info_text(trace, m, data.get("alive"), w, step)
        if text != self.info.text():
            self.info.setText(text)

    def _snapshot_text(self, trace: Trace, p: int | None, data: dict[str, Any]) -> str:
        if p is None:
            return "no parameters"
        if "snap" not in data or data["snap"] is None:
            return "no snapshot in this trace"
        si = data["snap_index"]
        steps, reasons = self._index["snap"], self._index["reason"]
        text = f"{MODES[self.mode]} @ snapshot step {int(steps[si])} ({reasons[si]}, {si + 1}/{len(steps)})"
        layout = data.get("layout") or {}
        stride = [int(s) for s in np.atleast_1d(layout.get("stride", [1]))]
        if any(s > 1 for s in stride):
            text += f"  ·  every {'×'.join(map(str, stride))} of {tuple(layout.get('full_shape', ()))}"
        return text

    def _draw_matrix(self, trace: Trace, p: int | None, data: dict[str, Any]) -> None:
        arr = data.get("snap")
        self.image.clear()
        self._nonfinite.clear()
        self.bars.setOpts(x=[], height=[])
        self._dead_marks.setData([], [])
        self._matrix = None
        if p is None or arr is None:
            return
        arr = np.asarray(arr, dtype=np.float32)
        if self.mode == "dW" and data.get("ref") is not None and np.shape(data["ref"]) == arr.shape:
            arr = arr - np.asarray(data["ref"], dtype=np.float32)
        stride = [int(s) for s in np.atleast_1d((data.get("layout") or {}).get("stride", [1]))]
        lim = self._locked_limit(p, arr)
        if arr.ndim <= 1:
            x = np.arange(arr.size) * stride[0]
            color = np.where(np.nan_to_num(arr.reshape(-1)) >= 0, 1, 0)
            brushes = [pg.mkBrush(200, 80, 70) if c else pg.mkBrush(70, 110, 200) for c in color]
            self.bars.setOpts(x=x, height=np.nan_to_num(arr.reshape(-1)), width=0.8 * stride[0],
                              brushes=brushes)
            self.matrix.getViewBox().invertY(False)
            self.matrix.setLabel("left", "value")
            self.matrix.setLabel("bottom", "unit")
            n = arr.size * stride[0]
            self._fit(("bars", id(self.state.run), p, arr.size),
                      lambda: self.matrix.setXRange(-0.5 * stride[0], n, padding=0.02))
            self.matrix.setYRange(-lim, lim, padding=0.05)
            return
        mat = vd.matrix_2d(arr)
        s0, s1 = stride[0], stride[-1] if len(stride) > 1 else 1
        self._matrix = (mat, s0, s1)
        rect = QRectF(-0.5 * s1, -0.5 * s0, mat.shape[1] * s1, mat.shape[0] * s0)
        self.image.setImage(np.where(np.isfinite(mat), mat, 0.0), autoLevels=False, levels=(-lim, lim),
                            rect=rect)
        self.cbar.setLevels((-lim, lim))
        rgba = nonfinite_overlay(vd.nonfinite_flags(mat))
        if rgba is not None:
            self._nonfinite.setImage(rgba, rect=rect)
        self.matrix.getViewBox().invertY(True)
        self.matrix.setLabel("left", "output unit")
        flat = len(trace.param_info[p]["shape"]) > 2
        self.matrix.setLabel("bottom", "input × kernel (flattened)" if flat else "input")
        self._fit(("matrix", id(self.state.run), p, mat.shape, s0, s1),
                  lambda: self.matrix.getViewBox().setRange(rect, padding=0.02))
        alive = data.get("alive")
        if alive is not None and len(alive) and self._unit_count(trace, p) == alive.shape[1]:
            w = vd.window_at(self._index["unit"], self.state.step)
            dead = vd.dead_units(alive, w)
            dead = dead[dead % s0 == 0]
            self._dead_marks.setData(np.full(len(dead), -0.5 * s1 - 0.02 * mat.shape[1] * s1), dead)

    @staticmethod
    def _unit_count(trace: Trace, p: int) -> int:
        shape = trace.param_info[p]["shape"]
        return int(shape[0]) if shape else 0

    def _draw_units(self, trace: Trace, m: int | None, alive: Any, w: int | None) -> None:
        self.units_image.clear()
        if m is None:
            self.units.setTitle("<small>no module</small>")
            return
        mname = trace.module_names[m]
        if alive is None or not len(alive) or w is None:
            self.units.setTitle(f"<small>no per-unit liveness recorded for {mname}</small>")
            return
        dead = vd.dead_units(alive, w)
        rgba = np.empty((1, alive.shape[1], 4), np.uint8)
        rgba[0] = (*ALIVE_COLOR, 255)
        rgba[0, dead] = (*DEAD_COLOR, 255)
        self.units_image.setImage(rgba, rect=QRectF(-0.5, 0, alive.shape[1], 1))
        end = int(self._index["unit"][w])
        self.units.setTitle(f"<small>{mname}: {len(dead)} / {alive.shape[1]} units never fired in the window "
                            f"ending at step {end} (red)</small>")

    def _info_text(self, trace: Trace, m: int | None, alive: Any, w: int | None, step: int) -> str:
        if m is None:
            return ""
        row = trace.row_of(step)
        sat = self._stat_at(trace, "modules", "a_sat_frac", row, m)
        dead_frac = self._stat_at(trace, "modules", "a_dead_frac", row, m)
        types = trace.module_types
        parts = [f"{trace.module_names[m]} ({types[m] if m < len(types) else '?'})",
                 f"saturated {sat:.1%}" if np.isfinite(sat) else "saturated n/a (unbounded)",
                 f"dead fraction at step {int(trace.steps[row])}: {dead_frac:.1%}" if np.isfinite(dead_frac)
                 else "dead fraction n/a"]
        if alive is not None and len(alive) and w is not None:
            parts.append(f"{len(vd.dead_units(alive, w))} / {alive.shape[1]} units dead")
        return "  ·  ".join(parts)

    def _stat_at(self, trace: Trace, group: str, stat: str, row: int, col: int) -> float:
        """``views_data.stat_at`` read ``_STAT_ROWS`` rows at a time: scrubbing reads once per block."""
        if not trace.has(f"{group}/{stat}"):
            return float("nan")
        b = row // _STAT_ROWS
        key = (id(trace), group, stat, col, b)
        block = self._stats.get(key)
        if block is None or row - b * _STAT_ROWS >= len(block):  # unread, or rows a live writer added
            if len(self._stats) > 64:
                self._stats.clear()
            rows = slice(b * _STAT_ROWS, (b + 1) * _STAT_ROWS)
            block = self._stats[key] = np.asarray(trace.stat_block(group, stat, rows, slice(col, col + 1)),
                                                  dtype=np.float64).reshape(-1)
        i = row - b * _STAT_ROWS
        return float(block[i]) if 0 <= i < len(block) else float("nan")

    def _on_hover(self, scene_pos: Any) -> None:
        mat = getattr(self, "_matrix", None)
        if mat is None or not self.matrix.getViewBox().sceneBoundingRect().contains(scene_pos):
            return
        values, s0, s1 = mat
        pt = self.matrix.getViewBox().mapSceneToView(scene_pos)
        r, c = int(round(pt.y() / s0)), int(round(pt.x() / s1))
        if 0 <= r < values.shape[0] and 0 <= c < values.shape[1]:
            self.value_label.setText(f"[{r * s0}, {c * s1}] = {fmt(float(values[r, c]))}")
