"""softmax_saturation — predicted probabilities are one-hot, yet the loss is far from 0.

Looks at: over the last 20 % of the run (at most 500 rows), the sampled output rows turned
    into the model's confidence: the largest softmax probability of each row of logits,
    the largest entry of each probability row, or max(p, 1 − p) of each sigmoid output
    (a single logit column through a sigmoid); the recorded loss over the same steps.
Fires when: the loss is a classification loss (or the targets are class indices), ≥ 80 %
    of the late rows have confidence ≥ 0.99, and the median late loss is both ≥ ¼·log K
    (K classes) and ≥ 20× the loss a calibrated model that confident would have
    (−log of the mean confidence): confident and wrong. Warning.
Evidence: the share of one-hot rows, the mean confidence, the loss and the two reference
    levels, the steps.
Onset: the first step from which ≥ 80 % of sampled predictions stay one-hot.
Fix: a symptom: see the cause ranked above it (large init or learning rate blowing up the
    logits, probabilities fed to a logit loss); label smoothing or logit clipping only
    hide it.
"""

from __future__ import annotations

import math

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "softmax_saturation"


def confidence_rows(sample: np.ndarray, form: str, cls: str | None) -> np.ndarray:
    """Per sampled row (per element for sigmoid outputs): the model's confidence in its top class."""
    rows = D.flat_rows(sample)
    if not len(rows):
        return np.zeros(0)
    if form == "softmax":
        return rows.max(axis=1)
    if form == "sigmoid" or rows.shape[1] == 1 or cls in ("BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"):
        p = rows if form == "sigmoid" else 1.0 / (1.0 + np.exp(-np.clip(rows, -500, 500)))
        return np.maximum(p, 1 - p).ravel()
    z = rows - rows.max(axis=1, keepdims=True)
    e = np.exp(z)
    return 1.0 / e.sum(axis=1)


@detector(code=CODE, kind="symptom", requires=("outputs/sample",))
def detect(trace: Trace) -> Finding | None:
    cls = D.loss_class(trace)
    if not (cls in M.CLASSIFICATION_LOSSES or (cls is None and D.target_kind(trace) == "index")):
        return None
    if not D.classes_last(trace):
        return None
    rows = D.late(trace, cap=500)
    conf_rows = confidence_rows(D.read(trace, "outputs", "sample", rows), D.output_form(trace), cls)
    if conf_rows.size < 16:
        return None
    onehot = M.frac(conf_rows >= 0.99)
    mean_conf = float(conf_rows.mean())
    loss = M.nanmedian(D.mean_loss(trace)[rows])
    if onehot < 0.8 or not np.isfinite(loss):
        return None
    k = max(D.columns(trace, "outputs"), 2)
    chance = 0.25 * math.log(k)
    calibrated = max(-math.log(max(mean_conf, 1e-12)), 0.0)
    if loss < chance or loss < 20 * calibrated:
        return None
    acc = _accuracy(trace, rows)
    if np.isfinite(acc) and acc >= 0.8:
        return None  # confident and right: the high loss is something else (reduction, weighting)
    span = D.step_span(trace, rows)
    form, c = D.output_form(trace), cls

    def per_row(r):
        rows_conf = confidence_rows(D.read(trace, "outputs", "sample", r), form, c)
        if rows_conf.ndim == 1:
            rows_conf = rows_conf.reshape(len(trace.steps[r]), -1)
        high = np.asarray(D.mean_loss(trace)[r], np.float64) >= chance  # one-hot and paying for it
        return (M.nanmean(rows_conf >= 0.99, axis=1) >= 0.8) & high, np.isfinite(rows_conf).any(axis=1)

    try:
        span = [min(D.evidence_onset(trace, per_row), span[0]), span[1]]
    except (ValueError, IndexError):
        pass
    calib_txt = M.fmt(calibrated) if calibrated >= 1e-9 else "0"
    conf = 0.6 + 0.3 * min(onehot, 1.0) * min(loss / (4 * chance), 1.0)
    acc_txt = f"; {acc:.0%} of them are right" if np.isfinite(acc) else ""
    evidence = (f"over steps {span[0]}–{span[1]}, {onehot:.0%} of sampled predictions have top probability "
                f"≥ 0.99 (mean {mean_conf:.4f}){acc_txt}, yet the loss is {M.fmt(loss)} — a calibrated model "
                f"that confident would score about {calib_txt}, and log K/4 is {M.fmt(chance)}: confident "
                "and wrong" + (" on the rows it gets wrong" if np.isfinite(acc) and acc >= 0.5 else ""))
    title = (f"Predictions are one-hot, {1 - acc:.0%} of them wrong" if np.isfinite(acc)
             else "Predictions are one-hot, yet the loss is high")
    return Finding(code=CODE, kind="symptom", severity="warning", confidence=conf, steps=span, layer=None,
                   title=title, evidence=evidence,
                   fix="a symptom: fix the cause ranked above it (logits blown up by a large init or "
                       "learning rate, probabilities fed to a logit loss)")


def _accuracy(trace: Trace, rows) -> float:
    """Share of sampled rows whose top output is the target class (NaN without class-index targets)."""
    if trace.batch_attrs("targets").get("kind") != "index" or not D.has(trace, "targets", "sample"):
        return float("nan")
    out = np.asarray(D.read(trace, "outputs", "sample", rows), np.float64)
    tgt = np.asarray(D.read(trace, "targets", "sample", rows), np.float64).reshape(out.shape[0], -1)
    if out.ndim != 3 or tgt.shape[1] != out.shape[1]:
        return float("nan")
    ok = np.isfinite(tgt) & np.isfinite(out).all(axis=-1)
    if ok.sum() < 16:
        return float("nan")
    pred = np.nanargmax(np.where(np.isfinite(out), out, -np.inf), axis=-1)
    return float(np.mean(pred[ok] == tgt[ok]))
