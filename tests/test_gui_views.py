"""Data views (heatmap, layer detail, outputs) and their display maths, offscreen.

Drive the ``RunState``, assert on what the views draw: pixels from ``grab()`` for
orientation and NaN colours, texts for readouts. Synthetic traces are in memory; one
test records a real small MLP with ``TraceRecorder``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from analysis import views_data as vd
from analysis.synthetic import DEFAULT_MODULES, DEFAULT_PARAMS, synthetic_arrays
from analysis.trace import Trace, open_trace
from gui.state import Run, RunState
from gui.views._common import NO_DATA_COLOR, NONFINITE_COLORS, elide
from gui.views.heatmap_view import HeatmapView
from gui.views.layer_view import LayerView
from gui.views.outputs_view import OutputsView

NAN_RGB = NONFINITE_COLORS[0][2][:3]


# ----------------------------------------------------------------------------- traces
def _extras(n: int, snap_steps: list[int], dead: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Snapshots, histograms and unit liveness for the default synthetic model."""
    rng = np.random.default_rng(3)
    out: dict[str, np.ndarray] = {
        "snapshots/step": np.array(snap_steps, np.int64),
        "snapshots/reason": np.zeros(len(snap_steps), np.int8),
    }
    for i, (_, _, shape) in enumerate(DEFAULT_PARAMS):
        w = rng.standard_normal(shape).astype(np.float32)
        out[f"snapshots/weight/p{i}"] = np.stack([w * (1 + k) for k in range(len(snap_steps))])
        out[f"snapshots/grad/p{i}"] = np.stack([w * 0.01] * len(snap_steps))
    hs = np.arange(9, n, 10, dtype=np.int64)
    out["hist/step"] = out["units/step"] = hs
    for kind, k in (("weight", len(DEFAULT_PARAMS)), ("grad", len(DEFAULT_PARAMS)), ("act", 3)):
        out[f"hist/{kind}"] = rng.integers(0, 9, (len(hs), k, 64)).astype(np.int32)
        out[f"hist/{kind}_range"] = np.tile(np.array([-1, 1], np.float32), (len(hs), k, 1))
    for j in range(len(DEFAULT_MODULES)):
        units = 4 if j == 2 else 32
        alive = np.ones((len(hs), units), np.uint8)
        if j == 1:
            alive[:, list(dead)] = 0
        out[f"units/alive/m{j}"] = alive
    return out


def make_trace(n: int = 60, overrides: dict | None = None, extras: bool = False, **kw) -> Trace:
    data, attrs = synthetic_arrays(n, overrides=overrides, **kw)
    if extras:
        data.update(_extras(n, [0, 10, 20, n - 1], dead=(3, 7)))
    return Trace.from_arrays(data, attrs, path="<test>")


@pytest.fixture
def state():
    return RunState()


def show(qtbot, view):
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    view.wait()
    return view


def open_run(state: RunState, view, trace: Trace) -> None:
    state.add_run(Run(trace, name="t"))
    view.wait()


def image_rect(view: HeatmapView):
    """The heatmap image's rectangle in the GraphicsView's widget pixels."""
    scene = view.image.mapRectToScene(view.image.boundingRect())
    return view.glw.mapFromScene(scene).boundingRect()


def cell_pos(view: HeatmapView, row: int, y: int) -> QPoint:
    """Widget position (in ``view.glw``) of trace row ``row``, displayed layer ``y``."""
    return view.glw.mapFromScene(view.vb.mapViewToScene(QPointF(row, y)))


# ----------------------------------------------------------------------------- display maths
def test_pyramid_matches_brute_force_and_keeps_nonfinite():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5003, 3)).astype(np.float32)
    a[1234, 2], a[4000, 1], a[5002, 0] = np.nan, np.inf, -np.inf
    pyr = vd.ColumnPyramid(lambda s, e: a[s:e], len(a), 3, block=1000, min_columns=8)
    assert pyr.n_levels >= 5
    k = 3
    f = pyr.cell_rows(k)
    values, flags = pyr.window(k, 0, pyr.n_columns(k), "max")
    clean = np.where(np.isfinite(a), a, -np.inf)
    ref = np.array([clean[i : i + f].max(0) for i in range(0, len(a), f)])
    assert np.allclose(values, ref)
    assert flags[1234 // f, 2] == vd.NAN_FLAG and flags[4000 // f, 1] == vd.POSINF_FLAG
    assert flags[5002 // f, 0] == vd.NEGINF_FLAG
    assert flags.sum() == vd.NAN_FLAG + vd.POSINF_FLAG + vd.NEGINF_FLAG
    signed, _ = pyr.window(k, 0, 2, "maxabs")
    mins = np.array([a[i : i + f].min(0) for i in (0, f)])
    assert np.allclose(signed, np.where(np.abs(mins) > np.abs(ref[:2]), mins, ref[:2]))
    raw, raw_flags = pyr.window(0, 1230, 1240)
    assert np.isnan(raw[4, 2]) and raw_flags[4, 2] == vd.NAN_FLAG and raw.shape == (10, 3)
    grown = vd.ColumnPyramid(lambda s, e: a[s:e], 3001, 3, block=1000, min_columns=8)
    grown.extend(len(a))
    for lvl_a, lvl_b in zip(pyr.levels, grown.levels):
        for x, y in zip(lvl_a, lvl_b):
            assert np.array_equal(x, y, equal_nan=True)
    assert pyr.level_for(5003, 100) == 3 and pyr.level_for(50, 100) == 0


def test_pyramid_missing_values_are_not_flagged_as_nan():
    a = np.ones((64, 2), np.float32)
    a[::2, 0] = np.nan  # "not measured" on even rows
    a[5, 1] = np.nan  # a real NaN
    missing = np.zeros_like(a, bool)
    missing[::2, 0] = True
    pyr = vd.ColumnPyramid(lambda s, e: (a[s:e], missing[s:e]), 64, 2, min_columns=1)
    values, flags = pyr.window(1, 0, 16)
    assert not flags[:, 0].any() and np.all(values[:, 0] == 1)
    assert flags[1, 1] == vd.NAN_FLAG
    raw, raw_flags = pyr.window(0, 0, 4)
    assert np.isnan(raw[0, 0]) and raw_flags[0, 0] == 0


def test_display_helpers():
    assert vd.robust_levels(np.r_[np.zeros(500), 1.0]) == (0.0, 1.0)  # flat percentiles → min/max
    lo, hi = vd.robust_levels(np.full(10, 2.0))
    assert lo < 2.0 < hi
    assert vd.robust_levels(np.array([np.nan, np.inf])) == (0.0, 1.0)
    assert vd.symmetric_limit(np.array([-3.0, 1.0, np.nan])) == 3.0
    p = vd.softmax(np.array([[0.0, 0.0], [1000.0, 0.0], [np.nan, 1.0]]))
    assert np.allclose(p[:2].sum(1), 1) and p[1, 0] == 1.0 and np.isnan(p[2]).all()
    assert vd.one_hot(np.array([2.0, np.nan, 7.0]), 3).tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert vd.top_class(np.array([0, 0, 0, 64])) == (3, 1.0)
    assert np.allclose(vd.hist_edges(np.array([1.0, 1.0]), 4), [0.5, 0.75, 1.0, 1.25, 1.5])
    assert vd.window_at(np.array([9, 19, 29]), 10) == 1 and vd.window_at(np.array([9, 19]), 99) == 1
    with np.errstate(all="raise"):
        assert np.isneginf(vd.log10_display(np.array([0.0, 100.0]))[0])
    assert elide("model.layers.11.self_attn.q_proj.weight", 26) == "model.l.11.s.q_proj.weight"
    assert elide("fc1.weight") == "fc1.weight"


def test_layer_rows_maps_modules_and_params():
    trace = make_trace(10)
    assert vd.layer_rows(trace, "params", "fc1") == [0, 1]
    assert vd.layer_rows(trace, "params", "fc2.bias") == [3]
    assert vd.layer_rows(trace, "modules", "fc2.weight") == [2]
    assert vd.layer_rows(trace, "modules", "act") == [1]
    assert vd.layer_rows(trace, "modules", "") == []


def test_worker_lane_delivers_only_the_newest_result(qtbot):
    import threading

    from gui.views._common import WorkerLane

    lane, gate, got, ran = WorkerLane(), threading.Event(), [], []

    def slow(tag: str):
        def fn():
            ran.append(tag)
            gate.wait(5)
            return tag
        return fn

    for tag in ("a", "b", "c"):
        lane.submit(slow(tag), got.append)
    gate.set()
    lane.wait()
    qtbot.waitUntil(lambda: not lane.busy, timeout=5000)
    assert got == ["c"]  # "a" (if it started) is stale; "b" is dropped before it starts
    assert "b" not in ran and ran[-1] == "c"
    lane.submit(lambda: 1 / 0, got.append)
    lane.wait()
    assert isinstance(got[-1], ZeroDivisionError)


# ----------------------------------------------------------------------------- heatmap
def test_heatmap_metric_change_rerenders(qtbot, state):
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(80))
    before = view.image.image.copy()
    assert view.bar.getAxis("left").labelText == "log10(gradient norm)"
    view.metric_box.setCurrentIndex(view.metric_box.findData("w_norm"))
    view.wait()
    assert view.metric_key == "w_norm"
    assert view.bar.getAxis("left").labelText == "log10(weight norm)"
    assert not np.array_equal(view.image.image, before)
    view.set_metric("a_std")
    view.wait()
    assert view._yaxis._names == ["fc1 (Linear)", "act (ReLU)", "fc2 (Linear)"]
    view.filter_edit.setText("relu")  # module types match too
    assert view._yaxis._names == ["act (ReLU)"]
    view.filter_edit.setText("")
    assert view.image.image.shape[0] == 3


def test_heatmap_click_sets_step_and_layer_and_hover_shows_value(qtbot, state):
    view = show(qtbot, HeatmapView(state))
    trace = make_trace(100)
    open_run(state, view, trace)
    qtbot.mouseClick(view.glw.viewport(), Qt.MouseButton.LeftButton, pos=cell_pos(view, 57, 2))
    assert state.step == 57 and state.layer == "fc2.weight"
    assert view._cursor_line.isVisible() and round(view._cursor_line.value()) == 57
    assert view._outline.isVisible() and view._outline.rect().center().y() == pytest.approx(2, abs=0.01)
    hover(view.glw.viewport(), cell_pos(view, 40, 1))
    exact = float(trace.param_stat("g_norm")[40, 1])
    assert "fc1.bias" in view.readout.text() and "step 40" in view.readout.text()
    assert f"{exact:.6g}" in view.readout.text()


def test_heatmap_orientation_hot_cell_top_left(qtbot, state):
    n = 40
    g = np.ones((n, 4), np.float32)
    g[0, 0] = 1e4  # flat elsewhere: levels span min..max, only this cell reaches the top colour
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(n, overrides={"params/g_norm": g}))
    state.set_step(n - 1)  # keep the cursor line away from the hot cell
    qtbot.wait(10)
    img = view.glw.grab().toImage()
    rect = image_rect(view)
    top = view.bar.colorMap().map(1.0, mode="qcolor")
    hot = [
        (x, y)
        for x in range(rect.left(), rect.right())
        for y in range(rect.top(), rect.bottom(), 2)
        if _close(img.pixelColor(x, y), top)
    ]
    assert hot, "no pixel in the top colour"
    xs, ys = zip(*hot)
    assert max(xs) < rect.left() + rect.width() / n * 1.5
    assert max(ys) < rect.top() + rect.height() / 4 * 1.1


def hover(widget, pos: QPoint) -> None:
    """A real mouse-move event (QTest's mouseMove sends none without a button offscreen)."""
    local = QPointF(pos)
    event = QMouseEvent(QEvent.Type.MouseMove, local, widget.mapToGlobal(local), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _close(c, ref, tol: int = 12) -> bool:
    return (
        abs(c.red() - ref.red()) <= tol
        and abs(c.green() - ref.green()) <= tol
        and abs(c.blue() - ref.blue()) <= tol
    )


def _rgb_close(c, rgb, tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip((c.red(), c.green(), c.blue()), rgb))


def test_heatmap_nan_cell_drawn_in_nan_colour_even_zoomed_out(qtbot, state):
    n = 20000
    data = synthetic_arrays(n)[0]
    g, bad = data["params/g_norm"].copy(), data["params/g_nonfinite"].copy()
    g[13_371, 1], bad[13_371, 1] = np.nan, 7  # a NaN gradient (its norm is NaN, its count > 0)
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(n, overrides={"params/g_norm": g, "params/g_nonfinite": bad}))
    assert view._shown[0] > 0  # a coarse pyramid level is on screen
    img = view.glw.grab().toImage()
    p = cell_pos(view, 13_371, 1)
    hits = [x for x in range(p.x() - 4, p.x() + 5) if _rgb_close(img.pixelColor(x, p.y()), NAN_RGB)]
    assert hits, "the NaN cell is not drawn in the NaN colour at full zoom-out"
    other = cell_pos(view, 5000, 1)
    assert not _rgb_close(img.pixelColor(other), NAN_RGB)
    view.vb.setXRange(13_300, 13_450, padding=0)  # zoom in: raw rows, the same cell
    qtbot.wait(10)
    assert view._shown[0] == 0
    img = view.glw.grab().toImage()
    assert _rgb_close(img.pixelColor(cell_pos(view, 13_371, 1)), NAN_RGB)
    assert not _rgb_close(img.pixelColor(cell_pos(view, 13_371, 2)), NAN_RGB)


def test_heatmap_unmeasured_cells_are_no_data_not_nan(qtbot, state):
    n = 50
    ratio = np.full((n, 4), 1e-3, np.float32)
    ratio[1::2] = np.nan  # measured every other row (update_every)
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(n, overrides={"params/update_ratio": ratio}))
    view.set_metric("update_ratio")
    view.wait()
    state.set_step(0)
    img = view.glw.grab().toImage()
    assert _rgb_close(img.pixelColor(cell_pos(view, 21, 1)), NO_DATA_COLOR[:3])
    assert not _rgb_close(img.pixelColor(cell_pos(view, 21, 1)), NAN_RGB)
    assert not _rgb_close(img.pixelColor(cell_pos(view, 20, 1)), NO_DATA_COLOR[:3])


def test_heatmap_filter_zoom_and_range(qtbot, state):
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(30_000))
    view.filter_edit.setText(r"bias$")
    assert view._yaxis._names == ["fc1.bias", "fc2.bias"] and view.image.image.shape[0] == 2
    view.filter_edit.setText("fc1.(")  # not a regex: substring
    assert view._yaxis._names == []
    view.filter_edit.setText("")
    assert view.image.image.shape[1] < 3000  # never the 30k-wide raw image
    view.vb.setXRange(10_000, 10_400, padding=0)
    assert view._shown[0] == 0 and view.image.image.shape[1] <= 3 * 401 + 3
    state.set_range((10_100, 10_200))
    assert view._region.isVisible() and view._region.getRegion() == (10_099.5, 10_200.5)
    state.set_layer("fc1")  # a module: both of its parameter rows
    assert view._outline.rect().height() == pytest.approx(2)


def test_heatmap_user_limits_stay_locked(qtbot, state):
    view = show(qtbot, HeatmapView(state))
    open_run(state, view, make_trace(50))
    view.bar.setLevels((-3.0, -2.0))
    view.bar.sigLevelsChangeFinished.emit(view.bar)  # as when the user releases a handle
    assert view.image.levels.tolist() == [-3.0, -2.0]
    view.filter_edit.setText("weight")
    state.runUpdated.emit(0)
    assert tuple(view.bar.levels()) == (-3.0, -2.0) and view.image.levels.tolist() == [-3.0, -2.0]
    view.set_metric("w_norm")
    view.wait()
    assert tuple(view.bar.levels()) != (-3.0, -2.0)


# ----------------------------------------------------------------------------- layer detail
def test_layer_view_shows_nearest_snapshot_step_and_dead_units(qtbot, state):
    view = show(qtbot, LayerView(state))
    open_run(state, view, make_trace(30, extras=True))
    state.set_layer("fc1.weight")
    state.set_step(25)
    view.wait()
    assert "snapshot step 20" in view.title.text()
    assert view.image.image.shape == (32, 16)
    lo, hi = view.cbar.levels()
    assert lo == -hi and hi == pytest.approx(np.abs(view.image.image).max())
    view.set_mode("dW")  # snapshot k holds w * (1 + k): ΔW vs the first one is 2 w at step 20
    view.wait()
    first = make_trace(30, extras=True).snapshot("weight", 0, 0)
    assert np.allclose(view.image.image, 2 * first, atol=1e-5)
    view.set_mode("W")
    state.set_step(9)
    view.wait()
    assert "snapshot step 0" in view.title.text()
    state.set_layer("act")  # ReLU: the weights feeding it, its dead units
    view.wait()
    assert "2 / 32 units dead" in view.info.text()
    assert "weights of fc1" in view.title.text()
    state.set_layer("fc2.bias")
    view.wait()
    assert view.image.image is None and len(view.bars.opts["height"]) == 4


def test_layer_view_without_snapshots_says_so(qtbot, state):
    view = show(qtbot, LayerView(state))
    open_run(state, view, make_trace(20))
    state.set_layer("fc2.weight")
    view.wait()
    assert "no snapshot" in view.title.text()


# ----------------------------------------------------------------------------- outputs
def test_outputs_view_collapsed_model_readout(qtbot, state):
    n = 12
    logits = np.full((n, 16, 4), -5, np.float32)
    logits[..., 3] = 20
    counts = np.tile([0, 0, 0, 64], (n, 1)).astype(np.int32)
    view = show(qtbot, OutputsView(state))
    open_run(
        state,
        view,
        make_trace(
            n,
            overrides={
                "outputs/sample": logits,
                "outputs/argmax_hist": counts,
                "outputs/softmax_maxprob": np.ones(n),
            },
        ),
    )
    state.set_step(5)
    assert "predicts class 3 for 100% of rows" in view.summary and "max prob 1.00" in view.summary
    assert view.pages.currentWidget() is view.glw
    assert view.out_image.image.shape == (16, 4) and np.allclose(view.out_image.image[:, 3], 1)
    view.scale_box.setCurrentIndex(1)  # logits
    assert view.out_image.image[0, 3] == 20


def test_outputs_view_healthy_and_missing(qtbot, state):
    view = show(qtbot, OutputsView(state))
    open_run(state, view, make_trace(10))
    assert "predicts class" in view.summary and "100%" not in view.summary
    state.close_run(0)
    open_run(state, view, make_trace(10, overrides={"outputs": None, "targets": None}))
    assert view.pages.currentWidget() is view.message and "no outputs" in view.message.text()


def test_outputs_view_regression_collapse(qtbot, state):
    n = 8
    targets = np.random.default_rng(0).standard_normal((n, 16, 1)).astype(np.float32)
    view = show(qtbot, OutputsView(state))
    open_run(
        state,
        view,
        make_trace(
            n, overrides={"outputs/sample": np.full((n, 16, 1), 0.3, np.float32), "targets/sample": targets}
        ),
    )
    assert view.pages.currentWidget() is view.reg_plot
    assert view.summary.startswith("same output for every row")
    assert len(view.reg_scatter.data) == 16


# ----------------------------------------------------------------------------- a real recorded run
def test_views_on_a_recorded_mlp(qtbot, state, tmp_path):
    torch = pytest.importorskip("torch")
    from tests._recorder_helpers import record_full_batch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    path = tmp_path / "mlp.h5"
    record_full_batch(path, model, opt, loss_fn, x, y, 30, snapshot_every=10, hist_every=10)
    trace = open_trace(path)
    heat, layer, outputs = (show(qtbot, cls(state)) for cls in (HeatmapView, LayerView, OutputsView))
    state.add_run(Run(trace, name="mlp"))
    for v in (heat, layer, outputs):
        v.wait()
    assert heat._yaxis._names == trace.param_names
    qtbot.mouseClick(heat.glw.viewport(), Qt.MouseButton.LeftButton, pos=cell_pos(heat, 25, 0))
    layer.wait()
    outputs.wait()
    assert state.layer == "0.weight" and state.step == 25
    assert "snapshot step 20" in layer.title.text() and layer.image.image.shape == (16, 8)
    assert outputs.summary.startswith("predicts class")
    heat.set_metric("a_std")
    heat.wait()
    assert heat._yaxis._names == [f"{n} ({t})" for n, t in zip(trace.module_names, trace.module_types)]
    trace.close()
