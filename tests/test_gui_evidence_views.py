"""Outputs readout, histograms over time and the layer view's locked limits, offscreen.

Real HDF5 traces recorded with ``TraceRecorder`` where the bug needs a real model (a
Softmax fed to CrossEntropyLoss); synthetic arrays where the failure is planted.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from analysis import hist_time as ht
from analysis import outputs_data as od
from analysis.synthetic import synthetic_arrays
from analysis.trace import Trace, open_trace
from gui.state import Run, RunState
from gui.views.histogram_view import HistogramView
from gui.views.layer_view import LayerView
from gui.views.outputs_view import OutputsView
from tests.test_gui_views import _extras, make_trace, open_run, show


@pytest.fixture
def state():
    return RunState()


# ----------------------------------------------------------------------------- maths
def test_time_image_keeps_every_rows_mass_on_a_common_axis():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, (6, 64)).astype(np.int64)
    ranges = np.array([[-1, 1], [-2, 0.5], [0, 4], [3, 3], [-0.1, 0.1], [np.nan, np.nan]], np.float64)
    counts[5] = 0  # nothing recorded
    img = ht.time_image(counts, ranges, bins=40)
    assert img.edges[0] == -2 and img.edges[-1] == 4
    assert np.allclose(img.image.sum(axis=1), counts.sum(axis=1))
    # a single-valued row lands in the one bin that holds its value
    j = np.searchsorted(img.edges, 3.0, side="right") - 1
    assert img.image[3, j] == counts[3].sum() and np.count_nonzero(img.image[3]) == 1
    # mass stays inside the row's own range
    inside = (img.edges[:-1] >= -0.1 - 0.16) & (img.edges[1:] <= 0.1 + 0.16)
    assert img.image[4, ~inside].sum() == 0
    assert not img.has_row[5]


def test_all_zero_gradient_is_a_spike_at_zero():
    counts = np.zeros(64)
    counts[0] = 640  # the recorder puts a one-value tensor into its first bin
    sh = ht.step_hist(counts, np.array([0.0, 0.0]))
    assert sh.single == 0.0 and sh.counts.tolist() == [640]
    assert sh.edges[0] < 0 < sh.edges[1] and abs(sh.edges[0] + sh.edges[1]) < 1e-12
    assert sh.x_range[0] < -0.5 and sh.x_range[1] > 0.5


def test_probabilities_are_not_softmaxed_twice():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    ro = od.class_readout(p, counts=np.array([1, 1, 0]), maxprob=0.45, nonfinite=0)
    assert ro.already_probs and ro.maxprob == pytest.approx(0.75)
    logits = np.log(p) * 3
    ro = od.class_readout(logits, counts=np.array([1, 1, 0]), maxprob=0.9, nonfinite=0)
    assert not ro.already_probs and ro.maxprob == 0.9


def test_nan_rows_predict_nothing():
    out = np.full((8, 4), np.nan)
    ro = od.class_readout(out, counts=np.array([64, 0, 0, 0]), maxprob=np.nan, nonfinite=256)
    assert ro.top == -1 and ro.bad_rows == 8
    out[:2] = [[0, 5, 0, 0], [0, 4, 1, 0]]
    ro = od.class_readout(out, counts=np.array([64, 0, 0, 0]), maxprob=np.nan, nonfinite=200)
    assert ro.top == 1 and ro.share == 1.0 and ro.counts_source == "sample" and ro.bad_rows == 6


def test_scatter_frame_ignores_a_blow_up():
    x = np.linspace(-2, 2, 32)
    y = x.copy()
    y[3], y[7] = 1e27, -3e26
    f = od.scatter_frame(x, y)
    assert -3 < f.lo < -2 and 2 < f.hi < 3
    assert f.off.sum() == 2 and f.worst == 1e27 and f.y.max() == f.hi


# ----------------------------------------------------------------------------- views
def _record_double_softmax(path):
    torch = pytest.importorskip("torch")
    from tests._recorder_helpers import record_full_batch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3),
                                torch.nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(48, 6), torch.randint(0, 3, (48,))
    record_full_batch(path, model, opt, loss_fn, x, y, 20, hist_every=5)
    return path


def test_outputs_view_on_a_recorded_double_softmax(qtbot, state, tmp_path):
    trace = open_trace(_record_double_softmax(tmp_path / "ds.h5"))
    view = show(qtbot, OutputsView(state))
    state.add_run(Run(trace, name="ds"))
    view.wait()
    state.set_step(19)
    sample = trace.batch("outputs", "sample")[trace.row_of(19)]
    sample = sample[np.isfinite(sample).all(axis=1)]
    expect = sample.max(axis=1).mean()
    recorded = float(trace.batch("outputs", "softmax_maxprob")[trace.row_of(19)])
    assert recorded < expect - 0.05  # the recorder's softmax of probabilities: flattened
    assert f"max prob {expect:.2f}" in view.summary
    assert view.scale_box.itemText(0) == "probabilities (as recorded)"
    assert np.allclose(view.out_image.image, sample, atol=1e-6)
    trace.close()


def test_outputs_view_nan_outputs_and_regression_blow_up(qtbot, state):
    n = 6
    out = np.random.default_rng(0).standard_normal((n, 16, 4)).astype(np.float32)
    out[3:] = np.nan
    view = show(qtbot, OutputsView(state))
    open_run(state, view, make_trace(n, overrides={
        "outputs/sample": out, "outputs/argmax_hist": np.tile([64, 0, 0, 0], (n, 1)).astype(np.int32),
        "outputs/nonfinite": np.r_[np.zeros(3), np.full(3, 256.0)]}))
    state.set_step(4)
    assert view.summary == "no finite outputs" and "predicts" not in view.readout.text()
    state.close_run(0)
    targets = np.random.default_rng(1).standard_normal((n, 16, 1)).astype(np.float32)
    reg = targets.copy()
    reg[:, 2] = 1e27
    open_run(state, view, make_trace(n, overrides={"outputs/sample": reg, "targets/sample": targets}))
    (x0, x1), (y0, y1) = view.reg_plot.getViewBox().viewRange()
    assert max(abs(x0), abs(x1), abs(y0), abs(y1)) < 10
    assert len(view.reg_off.data) == 1 and len(view.reg_scatter.data) == 15
    assert "off-scale" in view.readout.text()


def test_histogram_view_shows_every_step_and_a_zero_gradient(qtbot, state):
    n = 60
    data, attrs = synthetic_arrays(n)
    data.update(_extras(n, [0, 10, 20, n - 1]))
    data["hist/grad"][:, 0] = 0  # the gradient of fc1.weight is exactly zero at every histogram step
    data["hist/grad"][:, 0, 0] = 512
    data["hist/grad_range"][:, 0] = 0.0
    trace = Trace.from_arrays(data, attrs, path="<test>")
    view = show(qtbot, HistogramView(state))
    state.add_run(Run(trace, name="h"))
    state.set_layer("fc1.weight")
    view.wait()
    img = view._images["weight"].image
    assert img.shape == (128, len(trace.hist_steps()))  # bins × steps
    state.set_step(25)
    assert "grad @ step 19" in view.hists["grad"].titleLabel.text
    assert "all values = 0" in view.hists["grad"].titleLabel.text
    x = view._bars["grad"].xData
    assert x[0] < 0 < x[-1] and abs(x[0] + x[-1]) < 1e-9  # centred on 0, not at -0.5
    assert view._cursors["act"].value() == 25  # the one cursor, between histogram steps
    assert list(view.logged_steps()) == list(trace.hist_steps())
    vb = view.times["act"].getViewBox()  # a left click on a time plot moves the step there
    pos = view.glw.mapFromScene(vb.mapViewToScene(QPointF(40, sum(vb.viewRange()[1]) / 2)))
    qtbot.mouseClick(view.glw.viewport(), Qt.MouseButton.RightButton, pos=pos)
    assert state.step == 25
    qtbot.mouseClick(view.glw.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert abs(state.step - 40) <= 1


def test_layer_view_limits_locked_while_scrubbing(qtbot, state):
    view = show(qtbot, LayerView(state))
    open_run(state, view, make_trace(30, extras=True))
    state.set_layer("fc1.weight")
    state.set_step(29)
    view.wait()
    top = view.cbar.levels()
    frame = view.matrix.getViewBox().viewRange()
    state.set_step(0)  # snapshot 0 holds w, a third of snapshot 3's scale
    view.wait()
    assert view.cbar.levels() == top and view.matrix.getViewBox().viewRange() == frame
    assert list(view.logged_steps()) == [0, 10, 20, 29]
    assert view.matrix.getViewBox().height() > 250  # the matrix has room now
