"""unnormalized_inputs — input features on huge or wildly different scales.

Looks at: ``inputs/feat_mean`` and ``feat_std`` (each kept feature's mean and std across
    the batch) over an evenly thinned set of steps, giving each feature's RMS size; the
    first layer's output scale (``modules/a_std``) early in the run; the input dtype and
    the first module (token ids into an Embedding, or a normalisation layer first, are
    not flagged).
Fires when: the largest feature's RMS is orders of magnitude above the unit scale that
    default initialisations assume: ≥ 100 (error), ≥ 20 (warning), ≥ 10 (info); a spread
    of ≥ 100× between the largest and the median feature, or a first-layer output std ≥ 10,
    raises the confidence (and lifts the 10–20 band to a warning).
Evidence: the largest feature (index) and its size, the median feature size, the spread,
    the first layer's output std.
Onset: step 0 when the inputs are this large from the start; else the step where the largest
    feature's per-batch size departs ≥ 10× from its earlier level (a scale change mid-run).
Fix: standardise every feature with training-set statistics ((x − mean) / std, e.g.
    sklearn StandardScaler), or scale images to [0, 1] and normalise per channel.
"""

from __future__ import annotations

import math

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.naming import module_label
from analysis.onset import from_start, level_shift
from analysis.trace import Trace

CODE = "unnormalized_inputs"
WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Bilinear", "LazyLinear", "LazyConv2d", "RNN", "LSTM",
            "GRU")


@detector(code=CODE, kind="cause", requires=("inputs",))
def detect(trace: Trace) -> Finding | None:
    first = D.first_leaf(trace)
    if D.integer_dtype(trace, "inputs") or (first and first[1] in D.EMBEDDING_TYPES):
        return None
    if not (D.has(trace, "inputs", "feat_mean") and D.has(trace, "inputs", "feat_std")):
        return None
    rows = D.thin(trace)
    fm = np.asarray(D.read(trace, "inputs", "feat_mean", rows), np.float64)
    fs = np.asarray(D.read(trace, "inputs", "feat_std", rows), np.float64)
    scale = M.feature_scale(fm, fs)
    start_row = _onset(trace, rows, fm, fs)
    varies = M.nanmax(fs, axis=0) > 0
    ok = np.isfinite(scale) & (scale > 0) & varies
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    top = int(idx[np.argmax(scale[ok])])
    s_max, s_med = float(scale[top]), float(np.median(scale[ok]))
    if s_max < 10:
        return None
    spread = s_max / s_med if s_med > 0 else math.inf
    pre = _first_layer_std(trace)
    severity, conf = _grade(s_max, spread, pre)
    normalised_first = bool(first and first[1] in D.NORM_TYPES)
    if normalised_first:
        severity, conf = "info", min(conf, 0.3)
    span = [int(trace.steps[start_row]), int(trace.steps[-1])]
    feat = D.feature_name(trace, top)
    evidence = (f"input feature {feat} has RMS size {M.fmt(s_max)} (mean {M.fmt(M.nanmean(fm[:, top]))}, std "
                f"{M.fmt(M.nanmean(fs[:, top]))}) while the median feature's is {M.fmt(s_med)} "
                f"({M.fmt(spread)}× spread over {int(ok.sum())} varying features)")
    if pre is not None:
        evidence += (f"; the first layer {module_label(trace, pre[0])} outputs std {M.fmt(pre[1])} early "
                     "in the run")
    if normalised_first:
        evidence += f"; the first module {module_label(trace, first[0])} normalises them inside the model"
    evidence += f" (steps {span[0]}–{span[1]})"
    fix = (f"standardise every feature with training-set statistics ((x − mean) / std, e.g. sklearn "
           f"StandardScaler) so each has size ≈ 1 instead of up to {M.fmt(s_max)}; for images divide by 255 "
           "and normalise per channel")
    marks = {"layers": [pre[0]] if pre is not None else []}
    return Finding(code=CODE, kind="cause", severity=severity, confidence=conf, steps=span,
                   layer=first[0] if first else None, title="Inputs are not normalised",
                   evidence=evidence, fix=fix, marks=marks)


def _onset(trace: Trace, rows, fm: np.ndarray, fs: np.ndarray) -> int:
    """Row where the largest feature's size departs 10x from its earlier level (0: from the start)."""
    per_row = M.row_feature_scale(fm, fs)
    found = level_shift(per_row, 10.0)
    if found < 0 or from_start(found, len(per_row)):
        return 0
    idx = np.arange(trace.n_steps)[rows]
    return int(idx[found])


def _grade(s_max: float, spread: float, pre: tuple[str, float] | None) -> tuple[str, float]:
    boost = (0.07 if spread >= 100 else 0.0) + (0.08 if pre is not None and pre[1] >= 10 else 0.0)
    if s_max >= 100:
        return "error", min(0.85 + 0.1 * min(math.log10(s_max / 100), 1.0) + boost, 0.97)
    if s_max >= 20 or boost >= 0.07:
        return "warning", 0.55 + boost
    return "info", 0.3 + boost


def _first_layer_std(trace: Trace) -> tuple[str, float] | None:
    """Median output std of the first weighted leaf module over the early rows."""
    names, types = trace.module_names, trace.module_types
    for j, typ in enumerate(types):
        if typ in WEIGHTED:
            a_std = trace.module_stat("a_std")
            if a_std.ndim != 2 or j >= a_std.shape[1]:
                return None
            value = M.nanmedian(a_std[D.early(trace, cap=200), j])
            return (names[j], float(value)) if np.isfinite(value) else None
    return None

