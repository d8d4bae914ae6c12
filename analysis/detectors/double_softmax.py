"""double_softmax — probabilities fed to a loss that applies its own softmax or sigmoid.

Looks at: the outputs passed to ``rec.step`` (``frac_in_01``, ``row_sum_mean/std``, ``min``,
    ``max`` per step), the loss class in ``meta.loss``, the model's last leaf module, and
    the recorded loss against the least value that loss can take on probabilities.
Fires when: on ≥ 98 % of steps every output lies in [0, 1] (and, with ≥ 2 columns, every row
    sums to 1: a softmax), the loss is CrossEntropyLoss / BCEWithLogitsLoss /
    MultiLabelSoftMarginLoss (they apply softmax/sigmoid themselves) or NLLLoss / KLDivLoss
    (they expect log-probabilities), and the recorded loss agrees: it never drops below
    ``log(1 + (C−1)/e)`` (CE on probabilities) or ``log(1 + 1/e)`` (BCE-with-logits on
    probabilities), or stays ≤ 0 (NLLLoss on probabilities). Error. Without recorded
    outputs, a last Softmax/Sigmoid module feeding such a loss is a warning.
Evidence: the row sums and range of the outputs and over which steps, the loss class, the
    floor and the lowest recorded loss, the Softmax/Sigmoid module.
Fix: remove the final Softmax/Sigmoid (module or ``F.softmax`` in ``forward``) and pass logits;
    apply softmax/sigmoid only for inference. With NLLLoss use LogSoftmax instead.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.naming import module_label
from analysis.trace import Trace

CODE = "double_softmax"
PROB_MODULES = ("Softmax", "Sigmoid", "Softmax2d", "Hardsigmoid")


@detector(code=CODE, kind="cause")
@quiet  # batches smaller than sample_rows leave all-NaN padding rows in outputs/sample
def detect(trace: Trace) -> Finding | None:
    cls = D.loss_class(trace)
    last = D.last_leaf(trace)
    if D.has(trace, "outputs", "frac_in_01"):
        return _from_outputs(trace, cls, last)
    return _from_model(trace, cls, last)


def _module_fix(trace: Trace, last: tuple[str, str] | None, cls: str | None, place: str = "forward"
                ) -> tuple[str, str | None]:
    """The fix, naming where the softmax/sigmoid is: the last module, the end of forward(), or the
    training loop between the model's output and the loss (``place`` = ``"loop"``)."""
    layer = None
    if last and last[1] in PROB_MODULES and place != "loop":
        where = f"the final nn.{last[1]} ({module_label(trace, last[0])})"
        layer = last[0]
    elif place == "loop":
        where = ("the softmax/sigmoid applied in the training loop between the model's output and the loss "
                 "(e.g. criterion(F.softmax(out, dim=1), y)); the model itself returns logits")
    else:
        where = ("the softmax/sigmoid at the end of forward() (F.softmax/torch.sigmoid on the returned "
                 "value: the outputs passed to rec.step are already probabilities)")
    if cls in M.LOGPROB_LOSSES:
        return (f"replace {where} with log_softmax (nn.LogSoftmax(dim=1)), or drop it and use "
                f"CrossEntropyLoss on the logits; {cls} expects log-probabilities"), layer
    what = "log_softmax" if cls == "CrossEntropyLoss" else "a sigmoid"
    return (f"remove {where} and pass the logits to {cls}, which applies {what} itself; apply "
            "softmax/sigmoid only when reporting probabilities or at inference"), layer


def _from_outputs(trace: Trace, cls: str | None, last: tuple[str, str] | None) -> Finding | None:
    rsm, rss = D.column(trace, "outputs", "row_sum_mean"), D.column(trace, "outputs", "row_sum_std")
    f01 = D.column(trace, "outputs", "frac_in_01")
    mn, mx = D.column(trace, "outputs", "min"), D.column(trace, "outputs", "max")
    valid = np.isfinite(f01)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    cols = D.columns(trace, "outputs")
    soft = M.frac(M.softmax_rows(rsm, rss, f01, D.sum_tol(trace))[valid])
    sig = M.frac(M.unit_interval(f01, mn, mx)[valid])
    if cols >= 2 and soft >= 0.98:
        form, share = "softmax", soft
    elif sig >= 0.98:
        form, share = "sigmoid", sig
    else:
        return _softmax_in_loop(trace, cls, cols)
    loss = trace.loss()
    low = M.nanmin(loss)
    rows_txt = (f"rows of the outputs sum to {M.nanmedian(rsm[valid]):.4f} ± "
                f"{M.fmt(M.nanmax(rss[valid]), 2)} and " if form == "softmax" else "the outputs ")
    base = (f"{rows_txt}lie in [{M.fmt(M.nanmin(mn[valid]))}, {M.fmt(M.nanmax(mx[valid]))}] on "
            f"{share:.0%} of {n_valid} recorded steps")
    module = (f"; the last module {module_label(trace, last[0])} is nn.{last[1]}"
              if last and last[1] in PROB_MODULES else "")
    fix, layer = _module_fix(trace, last, cls)
    span = D.step_span(trace)
    if cls in M.LOGIT_LOSSES:
        kind = "softmax" if cls == "CrossEntropyLoss" else "sigmoid"
        floor = M.double_softmax_floor(cols, kind)
        agree = M.loss_floor_share(loss, floor)
        if not agree >= 0.99:
            return None  # the loss went below what it could reach on these outputs: not what it saw
        conf = 0.9 + (0.05 if module else 0.0) + (0.03 if n_valid >= 20 else 0.0)
        evidence = (f"{base}{module}; the loss is {cls}, which applies "
                    f"{'log_softmax' if kind == 'softmax' else 'a sigmoid'} itself, and it never fell below "
                    f"{M.fmt(floor)} — the least {cls} can give on probabilities"
                    f"{f' over {cols} columns' if kind == 'softmax' else ''} (lowest recorded {M.fmt(low)})")
        found = _finding(conf, span, layer, f"Probabilities fed to {cls}, which applies its own {kind}",
                         evidence, fix)
        found.marks["hlines"] = [{"lane": "loss", "y": floor, "label": f"least {cls} on probabilities"}]
        return found
    if cls in M.LOGPROB_LOSSES:
        if cls == "NLLLoss" and not M.frac(M.finite(loss) <= 1e-6) >= 0.99:
            return None
        evidence = (f"{base}{module}; the loss is {cls}, which expects log-probabilities"
                    + (f", and it stays ≤ 0 (lowest {M.fmt(low)}): −p of the true class, not −log p"
                       if cls == "NLLLoss" else ""))
        return _finding(0.9, span, layer, f"Probabilities fed to {cls}, which expects log-probabilities",
                        evidence, fix)
    if cls is None and form == "softmax":
        vals = M.finite(loss)
        if vals.size and M.frac((vals <= 1e-6) & (vals >= -1 - 1e-6)) >= 0.99:
            evidence = (f"{base}; no loss module was given to the recorder, but the recorded loss stays in "
                        f"[−1, 0] (lowest {M.fmt(low)}): NLL on probabilities instead of log-probabilities")
            return _finding(0.7, span, layer, "Probabilities fed to an NLL loss", evidence,
                            _module_fix(trace, last, "NLLLoss")[0], severity="warning")
        floor = M.double_softmax_floor(cols, "softmax")
        if M.loss_floor_share(loss, floor) >= 0.99:
            evidence = (f"{base}; no loss module was given to the recorder, and the recorded loss never fell "
                        f"below {M.fmt(floor)}, the least cross-entropy gives on probabilities over {cols} "
                        "columns: if the loss is cross-entropy, it sees probabilities")
            return _finding(0.35, span, layer, "Outputs are probabilities: check the loss expects them",
                            evidence, _module_fix(trace, last, "CrossEntropyLoss")[0], severity="info")
    return None


def _softmax_in_loop(trace: Trace, cls: str | None, cols: int) -> Finding | None:
    """Recorded outputs are logits, yet the loss matches cross-entropy of their softmax: the softmax
    was applied in the training loop, between the recorded output and the loss."""
    if cls != "CrossEntropyLoss" or cols < 2 or not (D.has(trace, "outputs", "sample")
                                                     and D.has(trace, "targets", "sample")):
        return None
    if trace.batch_attrs("targets").get("kind") != "index":
        return None
    loss = trace.loss()
    floor = M.double_softmax_floor(cols, "softmax")
    if not M.loss_floor_share(loss, floor) >= 0.99:
        return None
    rows = D.thin(trace, cap=400)
    logits = np.asarray(D.read(trace, "outputs", "sample", rows), np.float64)
    tgt = np.asarray(D.read(trace, "targets", "sample", rows), np.float64).reshape(logits.shape[0], -1)
    if logits.ndim != 3 or tgt.shape[1] != logits.shape[1] or logits.shape[2] != cols:
        return None
    plain, twice = _ce(logits, tgt), _ce(_softmax(logits), tgt)
    seen = np.asarray(loss[rows] if isinstance(rows, slice) else loss[np.asarray(rows)], np.float64)
    ok = np.isfinite(plain) & np.isfinite(twice) & np.isfinite(seen) & (seen > 0)
    if ok.sum() < 10:
        return None
    err_plain = float(np.median(np.abs(np.log(plain[ok] / seen[ok]))))
    err_twice = float(np.median(np.abs(np.log(twice[ok] / seen[ok]))))
    if not (err_twice <= 0.1 and err_plain >= 2 * err_twice + 0.05):
        return None
    evidence = (f"the outputs passed to rec.step are logits (rows do not sum to 1; values in "
                f"[{M.fmt(M.nanmin(logits))}, {M.fmt(M.nanmax(logits))}]), yet the recorded {cls} never fell "
                f"below {M.fmt(floor)} — the least it gives on probabilities over {cols} columns (lowest "
                f"{M.fmt(M.nanmin(loss))}); on the recorded sample rows it matches the cross-entropy of "
                f"softmax(outputs) (median error {M.fmt(100 * err_twice, 2)} %) and not of the outputs "
                f"themselves ({M.fmt(100 * err_plain, 2)} %): a softmax is applied between the model's "
                "output and the loss")
    fix, _ = _module_fix(trace, None, cls, place="loop")
    found = _finding(0.85, D.step_span(trace), None,
                     f"Softmax applied in the training loop before {cls}, which applies its own",
                     evidence, fix)
    found.marks["hlines"] = [{"lane": "loss", "y": floor, "label": f"least {cls} on probabilities"}]
    return found


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.nanmax(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _ce(logits: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """``(rows,)`` mean cross-entropy over the sampled rows of each step (NaN-aware)."""
    z = logits - np.nanmax(logits, axis=-1, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=-1))
    idx = np.nan_to_num(tgt, nan=-1).astype(np.int64)
    valid = (idx >= 0) & (idx < logits.shape[-1])
    picked = np.take_along_axis(z, np.clip(idx, 0, logits.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    per = np.where(valid, lse - picked, np.nan)
    with np.errstate(all="ignore"):
        return np.nanmean(per, axis=1)


def _from_model(trace: Trace, cls: str | None, last: tuple[str, str] | None) -> Finding | None:
    if not last or cls is None:
        return None
    typ = last[1]
    softmax_bug = typ in ("Softmax", "Softmax2d") and (cls == "CrossEntropyLoss" or cls in M.LOGPROB_LOSSES)
    sigmoid_bug = typ in ("Sigmoid", "Hardsigmoid") and cls in M.LOGIT_LOSSES
    if not (softmax_bug or sigmoid_bug):
        return None
    fix, layer = _module_fix(trace, last, cls)
    evidence = (f"the model's last module {module_label(trace, last[0])} is nn.{typ} and the loss is {cls}; "
                "outputs were not recorded (pass outputs= to rec.step to confirm from the values)")
    return _finding(0.6, D.step_span(trace), layer, f"nn.{typ} output fed to {cls}", evidence, fix,
                    severity="warning")


def _finding(conf: float, span: list[int], layer: str | None, title: str, evidence: str, fix: str,
             severity: str = "error") -> Finding:
    return Finding(code=CODE, kind="cause", severity=severity, confidence=conf, steps=span, layer=layer,
                   title=title, evidence=evidence, fix=fix)
